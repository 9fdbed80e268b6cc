-- +goose Up
-- The shared schema in a form Citus can distribute by account_id (users,
-- projects, tasks and subtasks co-located by tenant, accounts a reference
-- table), and that plain PostgreSQL serves as fast as
-- before. (Version 00008 is skipped: it was the counts slots, reverted,
-- and may be recorded as applied in a database that had them.)
--
-- Keys: Citus refuses a primary key or unique constraint that does not
-- include the distribution column. Every query on these tables names the
-- tenant (the tenant scope), so (account_id, id) serves each lookup the
-- key on id served, and it replaces the UNIQUE (account_id, id) that the
-- composite foreign keys point at: projects and tasks lose an index each.
-- Ids still come from one identity sequence per table.
ALTER TABLE subtasks DROP CONSTRAINT subtasks_account_id_task_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_account_id_project_id_fkey;
ALTER TABLE users DROP CONSTRAINT users_pkey, ADD CONSTRAINT users_pkey PRIMARY KEY (account_id, id);
ALTER TABLE projects DROP CONSTRAINT projects_pkey, DROP CONSTRAINT projects_account_id_id_key,
    ADD CONSTRAINT projects_pkey PRIMARY KEY (account_id, id);
ALTER TABLE tasks DROP CONSTRAINT tasks_pkey, DROP CONSTRAINT tasks_account_id_id_key,
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (account_id, id);
ALTER TABLE subtasks DROP CONSTRAINT subtasks_pkey, ADD CONSTRAINT subtasks_pkey PRIMARY KEY (account_id, id);
ALTER TABLE tasks ADD CONSTRAINT tasks_account_id_project_id_fkey
    FOREIGN KEY (account_id, project_id) REFERENCES projects (account_id, id) ON DELETE RESTRICT;
ALTER TABLE subtasks ADD CONSTRAINT subtasks_account_id_task_id_fkey
    FOREIGN KEY (account_id, task_id) REFERENCES tasks (account_id, id) ON DELETE RESTRICT;

-- Policies: Citus refuses a sub-query in a policy on a distributed table.
-- app_current_tenant() is a STABLE SQL function that PostgreSQL inlines:
-- the planner uses it as an index condition, evaluated once per scan, as
-- it did the sub-select's result.
ALTER POLICY tenant_isolation ON accounts USING (id = app_current_tenant()) WITH CHECK (id = app_current_tenant());
ALTER POLICY tenant_isolation ON users USING (account_id = app_current_tenant()) WITH CHECK (account_id = app_current_tenant());
ALTER POLICY tenant_isolation ON projects USING (account_id = app_current_tenant()) WITH CHECK (account_id = app_current_tenant());
ALTER POLICY tenant_isolation ON tasks USING (account_id = app_current_tenant()) WITH CHECK (account_id = app_current_tenant());
ALTER POLICY tenant_isolation ON subtasks USING (account_id = app_current_tenant()) WITH CHECK (account_id = app_current_tenant());
ALTER POLICY tenant_isolation ON subtask_counts USING (account_id = app_current_tenant()) WITH CHECK (account_id = app_current_tenant());

-- The counts: on Citus the triggers run on each worker's shard of
-- subtasks, where a statement that joins the transition table with the
-- distributed subtask_counts cannot see the transition table ("could not
-- find named tuplestore"). So the changes are gathered from the transition
-- tables first, then written one tenant at a time, each a statement on one
-- account_id that Citus sends to the co-located shard of subtask_counts.
-- A statement touches one tenant but for loads, so this is one upsert, as
-- before. Increases are upserted and decreases updated in place in account
-- order, as before.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.subtask_counts_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    accounts bigint[];
    changes bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(account_id ORDER BY account_id), array_agg(n ORDER BY account_id) INTO accounts, changes
        FROM (SELECT account_id, count(*) AS n FROM new_rows GROUP BY account_id) c;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(account_id ORDER BY account_id), array_agg(-n ORDER BY account_id) INTO accounts, changes
        FROM (SELECT account_id, count(*) AS n FROM old_rows GROUP BY account_id) c;
    ELSE
        -- Only rows that moved between accounts change a count.
        SELECT array_agg(account_id ORDER BY account_id), array_agg(n ORDER BY account_id) INTO accounts, changes
        FROM (SELECT account_id, sum(d) AS n FROM (
                  SELECT account_id, 1 AS d FROM new_rows
                  UNION ALL
                  SELECT account_id, -1 FROM old_rows) moved
              GROUP BY account_id HAVING sum(d) <> 0) c;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(accounts), 0) LOOP
        IF changes[i] < 0 THEN
            UPDATE public.subtask_counts SET subtasks = subtasks + changes[i] WHERE account_id = accounts[i];
        ELSE
            INSERT INTO public.subtask_counts AS c (account_id, subtasks) VALUES (accounts[i], changes[i])
            ON CONFLICT (account_id) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- The tenant setting as Citus passes it on to the workers: a SET LOCAL
-- statement in a transaction block, with citus.propagate_set_commands =
-- 'local' (set_config() is not passed on, and the workers then see no
-- tenant and serve nothing). SET takes no bind parameter; this function
-- does, so the server sends one statement text for every tenant. On plain
-- PostgreSQL the server keeps using set_config(), and citus.* here is an
-- unused placeholder setting.
-- +goose StatementBegin
CREATE FUNCTION public.app_set_tenant(tenant bigint) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SET LOCAL citus.propagate_set_commands = 'local';
    EXECUTE format('SET LOCAL app.tenant_id = %L', tenant);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION public.app_set_tenant(bigint);
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
ALTER POLICY tenant_isolation ON subtask_counts USING (account_id = (SELECT app_current_tenant())) WITH CHECK (account_id = (SELECT app_current_tenant()));
ALTER POLICY tenant_isolation ON subtasks USING (account_id = (SELECT app_current_tenant())) WITH CHECK (account_id = (SELECT app_current_tenant()));
ALTER POLICY tenant_isolation ON tasks USING (account_id = (SELECT app_current_tenant())) WITH CHECK (account_id = (SELECT app_current_tenant()));
ALTER POLICY tenant_isolation ON projects USING (account_id = (SELECT app_current_tenant())) WITH CHECK (account_id = (SELECT app_current_tenant()));
ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant())) WITH CHECK (account_id = (SELECT app_current_tenant()));
ALTER POLICY tenant_isolation ON accounts USING (id = (SELECT app_current_tenant())) WITH CHECK (id = (SELECT app_current_tenant()));
ALTER TABLE subtasks DROP CONSTRAINT subtasks_account_id_task_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_account_id_project_id_fkey;
ALTER TABLE subtasks DROP CONSTRAINT subtasks_pkey, ADD CONSTRAINT subtasks_pkey PRIMARY KEY (id);
ALTER TABLE tasks DROP CONSTRAINT tasks_pkey, ADD CONSTRAINT tasks_pkey PRIMARY KEY (id),
    ADD CONSTRAINT tasks_account_id_id_key UNIQUE (account_id, id);
ALTER TABLE projects DROP CONSTRAINT projects_pkey, ADD CONSTRAINT projects_pkey PRIMARY KEY (id),
    ADD CONSTRAINT projects_account_id_id_key UNIQUE (account_id, id);
ALTER TABLE users DROP CONSTRAINT users_pkey, ADD CONSTRAINT users_pkey PRIMARY KEY (id);
ALTER TABLE tasks ADD CONSTRAINT tasks_account_id_project_id_fkey
    FOREIGN KEY (account_id, project_id) REFERENCES projects (account_id, id) ON DELETE RESTRICT;
ALTER TABLE subtasks ADD CONSTRAINT subtasks_account_id_task_id_fkey
    FOREIGN KEY (account_id, task_id) REFERENCES tasks (account_id, id) ON DELETE RESTRICT;
