-- +goose Up
-- The list page needs the tenant's number of subtasks on every request;
-- counting them is a scan of up to thousands of rows per request, so the
-- count is kept here by statement-level triggers, in the same transaction as
-- the change. The database holds one account, so this holds one row; an
-- update cannot move a subtask out of it, so only inserts and deletes count.
CREATE TABLE subtask_counts (
    account_id bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE RESTRICT,
    subtasks   bigint NOT NULL DEFAULT 0 CHECK (subtasks >= 0)
);

-- The triggers write with their owner's (the admin's) rights, so the app
-- role only reads the count. pg_temp is named last in each function's
-- search_path: unlisted, PostgreSQL would search the caller's temporary
-- schema first, where a temporary subtask_counts would take this one's
-- place. 00003_harden.sql replaces both functions with schema-qualified
-- ones.
-- +goose StatementBegin
CREATE FUNCTION subtask_counts_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO subtask_counts AS c (account_id, subtasks)
        SELECT id, (SELECT count(*) FROM new_rows) FROM accounts
        ON CONFLICT (account_id) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    ELSE
        -- In place: an upsert would check the negative row it proposes
        -- before finding the existing one.
        UPDATE subtask_counts SET subtasks = subtasks - (SELECT count(*) FROM old_rows);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER subtask_counts_insert AFTER INSERT ON subtasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subtask_counts_apply();
CREATE TRIGGER subtask_counts_delete AFTER DELETE ON subtasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subtask_counts_apply();

-- TRUNCATE fires no transition-table trigger.
-- +goose StatementBegin
CREATE FUNCTION subtask_counts_clear() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    UPDATE subtask_counts SET subtasks = 0;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER subtask_counts_truncate AFTER TRUNCATE ON subtasks
    FOR EACH STATEMENT EXECUTE FUNCTION subtask_counts_clear();

INSERT INTO subtask_counts (account_id, subtasks)
SELECT a.id, (SELECT count(*) FROM subtasks) FROM accounts a;

-- +goose Down
DROP TRIGGER subtask_counts_truncate ON subtasks;
DROP FUNCTION subtask_counts_clear();
DROP TRIGGER subtask_counts_delete ON subtasks;
DROP TRIGGER subtask_counts_insert ON subtasks;
DROP FUNCTION subtask_counts_apply();
DROP TABLE subtask_counts;
