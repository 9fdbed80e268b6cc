-- +goose Up
-- A priority on every subtask, indexed so that "the most urgent subtasks"
-- is an index range. It is also the schema change `tenancy compare` times
-- in every strategy (the same change in each): a column with a constant
-- default is a catalog entry, not a table rewrite, since PostgreSQL 11, so
-- what costs is the index, built over this tenant's rows, once per tenant.
ALTER TABLE subtasks ADD COLUMN priority smallint NOT NULL DEFAULT 0;
CREATE INDEX subtasks_priority ON subtasks (priority);

-- +goose Down
DROP INDEX subtasks_priority;
ALTER TABLE subtasks DROP COLUMN priority;
