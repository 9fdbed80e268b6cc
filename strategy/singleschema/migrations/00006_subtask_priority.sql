-- +goose Up
-- A priority on every subtask, indexed per tenant so that "a tenant's most
-- urgent subtasks" is an index range. It is also the schema change `tenancy
-- compare` times in every strategy (the same change in each): a column with
-- a constant default is a catalog entry, not a table rewrite, since
-- PostgreSQL 11, so what costs is the index, built over every tenant's rows
-- here in one statement, and over each tenant's own table in the others.
ALTER TABLE subtasks ADD COLUMN priority smallint NOT NULL DEFAULT 0;
CREATE INDEX subtasks_priority ON subtasks (account_id, priority);

-- +goose Down
DROP INDEX subtasks_priority;
ALTER TABLE subtasks DROP COLUMN priority;
