-- +goose Up
-- The list pages need each tenant's number of subtasks on every request.
-- Counting them is a scan of up to thousands of index entries per request
-- (and of every subtask for the all-tenants view), so the count is kept
-- here, by statement-level triggers in the same transaction as the change:
-- a snapshot that sees a subtask sees it counted. A tenant without a row has
-- no subtasks.
CREATE TABLE subtask_counts (
    account_id bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE RESTRICT,
    subtasks   bigint NOT NULL DEFAULT 0 CHECK (subtasks >= 0)
);

ALTER TABLE subtask_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE subtask_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subtask_counts
    USING (account_id = (SELECT app_current_tenant()))
    WITH CHECK (account_id = (SELECT app_current_tenant()));

-- The triggers write the counts with their owner's rights (SECURITY
-- DEFINER; the owner is the admin that runs the migrations), so the app role
-- only reads this table and no tenant code path can change a count. What
-- they count are the transition tables' rows, which the subtasks' own
-- policies have already let through for the tenant that wrote them.
-- Increases are upserted in account order; a tenant's writers do queue on
-- its counts row until they commit. pg_temp is named last in each
-- function's search_path: unlisted, PostgreSQL would search the caller's
-- temporary schema first, where a temporary subtask_counts would take this
-- one's place. 00005_harden.sql replaces both functions with
-- schema-qualified ones.
-- +goose StatementBegin
CREATE FUNCTION subtask_counts_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO subtask_counts AS c (account_id, subtasks)
        SELECT account_id, count(*) FROM new_rows GROUP BY account_id ORDER BY account_id
        ON CONFLICT (account_id) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE subtask_counts AS c SET subtasks = c.subtasks - d.n
        FROM (SELECT account_id, count(*) AS n FROM old_rows GROUP BY account_id) d
        WHERE c.account_id = d.account_id;
    ELSE
        -- Only rows that moved between accounts change a count; most
        -- updates (a subtask marked complete) write nothing here. Counts
        -- that go down are updated in place: an upsert would check the
        -- negative row it proposes before finding the existing one.
        UPDATE subtask_counts AS c SET subtasks = c.subtasks + d.n
        FROM (SELECT account_id, sum(d) AS n FROM (
                  SELECT account_id, 1 AS d FROM new_rows
                  UNION ALL
                  SELECT account_id, -1 FROM old_rows) moved
              GROUP BY account_id HAVING sum(d) < 0) d
        WHERE c.account_id = d.account_id;
        INSERT INTO subtask_counts AS c (account_id, subtasks)
        SELECT account_id, sum(d) FROM (
            SELECT account_id, 1 AS d FROM new_rows
            UNION ALL
            SELECT account_id, -1 FROM old_rows) moved
        GROUP BY account_id HAVING sum(d) > 0 ORDER BY account_id
        ON CONFLICT (account_id) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER subtask_counts_insert AFTER INSERT ON subtasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subtask_counts_apply();
CREATE TRIGGER subtask_counts_update AFTER UPDATE ON subtasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subtask_counts_apply();
CREATE TRIGGER subtask_counts_delete AFTER DELETE ON subtasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subtask_counts_apply();

-- TRUNCATE fires no row or transition-table trigger; this one keeps the
-- counts true when subtasks are truncated on their own.
-- +goose StatementBegin
CREATE FUNCTION subtask_counts_clear() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM subtask_counts;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER subtask_counts_truncate AFTER TRUNCATE ON subtasks
    FOR EACH STATEMENT EXECUTE FUNCTION subtask_counts_clear();

INSERT INTO subtask_counts (account_id, subtasks)
SELECT account_id, count(*) FROM subtasks GROUP BY account_id;

-- The all-tenants view now pages tenant by tenant, through
-- subtasks_account_name and the counts above; the global (name, id) order
-- it used had no way to reach a deep page but to walk every row before it.
DROP INDEX subtasks_name;

-- +goose Down
CREATE INDEX subtasks_name ON subtasks (name, id);
DROP TRIGGER subtask_counts_truncate ON subtasks;
DROP FUNCTION subtask_counts_clear();
DROP TRIGGER subtask_counts_delete ON subtasks;
DROP TRIGGER subtask_counts_update ON subtasks;
DROP TRIGGER subtask_counts_insert ON subtasks;
DROP FUNCTION subtask_counts_apply();
DROP TABLE subtask_counts;
