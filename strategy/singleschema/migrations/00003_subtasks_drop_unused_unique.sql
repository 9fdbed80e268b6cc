-- +goose Up
-- Nothing references subtasks, so its UNIQUE (account_id, id), which exists
-- on the parent tables only as the target of the composite foreign keys, is
-- an index that every insert pays for and no query uses. Subtasks are the
-- bulk of the rows: seeding 2,000 accounts writes ~900k of them.
ALTER TABLE subtasks DROP CONSTRAINT subtasks_account_id_id_key;

-- +goose Down
ALTER TABLE subtasks ADD CONSTRAINT subtasks_account_id_id_key UNIQUE (account_id, id);
