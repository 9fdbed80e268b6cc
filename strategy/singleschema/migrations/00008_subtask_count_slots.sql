-- +goose Up
-- One busy tenant's writers queued on its one counts row: a writer holds
-- the row's lock from its change until its commit is flushed (see
-- docs/performance.md, "Writes: the mixed load and one tenant's writers").
-- Each tenant's count is now spread over up to eight slot rows, a
-- connection adding to the slot of its backend pid, so writers of one
-- tenant on different connections seldom wait for each other. A slot may
-- go negative (a subtask counted in one slot and deleted from another
-- connection); only the sum per account means anything.
CREATE TABLE subtask_count_slots (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    slot       smallint NOT NULL CHECK (slot BETWEEN 0 AND 7),
    subtasks   bigint NOT NULL,
    PRIMARY KEY (account_id, slot)
);

ALTER TABLE subtask_count_slots ENABLE ROW LEVEL SECURITY;
ALTER TABLE subtask_count_slots FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subtask_count_slots
    USING (account_id = (SELECT app_current_tenant()))
    WITH CHECK (account_id = (SELECT app_current_tenant()));

INSERT INTO subtask_count_slots (account_id, slot, subtasks)
SELECT account_id, 0, subtasks FROM subtask_counts;
DROP TABLE subtask_counts;

-- Readers keep reading subtask_counts, now the slots summed. The view runs
-- with the rights and row-level security of whoever reads it
-- (security_invoker, PostgreSQL 15): as its owner, the admin, it would let
-- the app role see every tenant's count.
CREATE VIEW subtask_counts WITH (security_invoker = true) AS
SELECT account_id, sum(subtasks)::bigint AS subtasks
FROM subtask_count_slots GROUP BY account_id;

-- The same triggers as 00005_harden.sql, adding to the connection's slot.
-- Every kind of change is one upsert, in account order, so two statements
-- lock the slots they share in the same order.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.subtask_counts_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.subtask_count_slots AS c (account_id, slot, subtasks)
        SELECT account_id, pg_backend_pid() % 8, count(*) FROM new_rows GROUP BY account_id ORDER BY account_id
        ON CONFLICT (account_id, slot) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO public.subtask_count_slots AS c (account_id, slot, subtasks)
        SELECT account_id, pg_backend_pid() % 8, -count(*) FROM old_rows GROUP BY account_id ORDER BY account_id
        ON CONFLICT (account_id, slot) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    ELSE
        -- Only rows that moved between accounts change a count.
        INSERT INTO public.subtask_count_slots AS c (account_id, slot, subtasks)
        SELECT account_id, pg_backend_pid() % 8, sum(d) FROM (
            SELECT account_id, 1 AS d FROM new_rows
            UNION ALL
            SELECT account_id, -1 FROM old_rows) moved
        GROUP BY account_id HAVING sum(d) <> 0 ORDER BY account_id
        ON CONFLICT (account_id, slot) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.subtask_counts_clear() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM public.subtask_count_slots;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW subtask_counts;
CREATE TABLE subtask_counts (
    account_id bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE RESTRICT,
    subtasks   bigint NOT NULL DEFAULT 0 CHECK (subtasks >= 0)
);
ALTER TABLE subtask_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE subtask_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subtask_counts
    USING (account_id = (SELECT app_current_tenant()))
    WITH CHECK (account_id = (SELECT app_current_tenant()));
INSERT INTO subtask_counts (account_id, subtasks)
SELECT account_id, sum(subtasks) FROM subtask_count_slots GROUP BY account_id;
DROP TABLE subtask_count_slots;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.subtask_counts_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.subtask_counts AS c (account_id, subtasks)
        SELECT account_id, count(*) FROM new_rows GROUP BY account_id ORDER BY account_id
        ON CONFLICT (account_id) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE public.subtask_counts AS c SET subtasks = c.subtasks - d.n
        FROM (SELECT account_id, count(*) AS n FROM old_rows GROUP BY account_id) d
        WHERE c.account_id = d.account_id;
    ELSE
        UPDATE public.subtask_counts AS c SET subtasks = c.subtasks + d.n
        FROM (SELECT account_id, sum(d) AS n FROM (
                  SELECT account_id, 1 AS d FROM new_rows
                  UNION ALL
                  SELECT account_id, -1 FROM old_rows) moved
              GROUP BY account_id HAVING sum(d) < 0) d
        WHERE c.account_id = d.account_id;
        INSERT INTO public.subtask_counts AS c (account_id, subtasks)
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
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.subtask_counts_clear() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM public.subtask_counts;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
