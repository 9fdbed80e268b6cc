-- +goose Up
-- multischema keeps each tenant's tables in a schema of its own
-- (tenant_<account id>, see ../tenant) and, in public, what is shared: the
-- directory of accounts, each tenant's number of subtasks (for the
-- all-tenants list, which must not open every tenant's tables to find
-- where a page starts), and the functions the count triggers of every
-- tenant schema call.
CREATE TABLE accounts (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text COLLATE "C" NOT NULL UNIQUE,
    name text COLLATE "C" NOT NULL
);

CREATE TABLE tenant_totals (
    account_id bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    subtasks   bigint NOT NULL DEFAULT 0 CHECK (subtasks >= 0)
);

-- The count triggers of every tenant schema run these, with the rights of
-- a role that may only keep the counts. The schema they fire in names the
-- table to update (TG_TABLE_SCHEMA, set by whoever made the trigger: the
-- admin); every other name is qualified, and pg_temp comes last on the
-- search_path (see ../../../singleschema/migrations/00005_harden.sql).
-- A tenant's counts row exists from its creation, so these only update.
-- +goose StatementBegin
CREATE FUNCTION public.subtask_counts_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    delta   bigint;
    account bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO delta FROM new_rows;
    ELSE
        SELECT -count(*) INTO delta FROM old_rows;
    END IF;
    EXECUTE pg_catalog.format('UPDATE %I.subtask_counts SET subtasks = subtasks + $1 RETURNING account_id', TG_TABLE_SCHEMA)
        INTO account USING delta;
    UPDATE public.tenant_totals SET subtasks = subtasks + delta WHERE account_id = account;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- TRUNCATE fires no transition-table trigger.
-- +goose StatementBegin
CREATE FUNCTION public.subtask_counts_clear() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    account bigint;
BEGIN
    EXECUTE pg_catalog.format('UPDATE %I.subtask_counts SET subtasks = 0 RETURNING account_id', TG_TABLE_SCHEMA)
        INTO account;
    UPDATE public.tenant_totals SET subtasks = 0 WHERE account_id = account;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION public.subtask_counts_apply(), public.subtask_counts_clear() FROM PUBLIC;

-- +goose Down
DROP FUNCTION public.subtask_counts_clear();
DROP FUNCTION public.subtask_counts_apply();
DROP TABLE tenant_totals;
DROP TABLE accounts;
