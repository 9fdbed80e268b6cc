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
ALTER TABLE subtask_counts RENAME TO subtask_counts_unslotted;

-- Readers keep reading subtask_counts, now the slots summed. The view runs
-- with the rights and row-level security of whoever reads it
-- (security_invoker, PostgreSQL 15): as its owner, the admin, it would let
-- the app role see every tenant's count.
CREATE VIEW subtask_counts WITH (security_invoker = true) AS
SELECT account_id, sum(subtasks)::bigint AS subtasks
FROM subtask_count_slots GROUP BY account_id;

-- The roles' grants and the counts owner's policy are made after each
-- migrate (strategy/internal/pg/roles.go), which this migration does not
-- know the names of; they are copied from the old table here so that a
-- server running on meanwhile can read and write the counts.
-- +goose StatementBegin
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT a.grantee::regrole::text AS grantee, a.privilege_type AS priv
             FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
             WHERE c.oid = 'public.subtask_counts_unslotted'::regclass AND a.grantee <> c.relowner AND a.grantee <> 0 LOOP
        EXECUTE pg_catalog.format('GRANT %s ON public.subtask_count_slots TO %s', g.priv, g.grantee);
        IF g.priv = 'SELECT' THEN
            EXECUTE pg_catalog.format('GRANT SELECT ON public.subtask_counts TO %s', g.grantee);
        END IF;
    END LOOP;
    FOR g IN SELECT pg_catalog.string_agg(r::regrole::text, ', ') AS roles
             FROM pg_catalog.pg_policy p CROSS JOIN LATERAL pg_catalog.unnest(p.polroles) r
             WHERE p.polrelid = 'public.subtask_counts_unslotted'::regclass AND p.polname = 'counts_keeper' AND r <> 0
             HAVING pg_catalog.count(*) > 0 LOOP
        EXECUTE pg_catalog.format('CREATE POLICY counts_keeper ON public.subtask_count_slots TO %s USING (true) WITH CHECK (true)', g.roles);
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP TABLE subtask_counts_unslotted;

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
