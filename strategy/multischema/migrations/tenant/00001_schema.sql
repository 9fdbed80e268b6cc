-- +goose Up
-- One tenant's tables, in its own schema (the migration runs with that
-- schema first on its search_path): the plain single-tenant tables of
-- multidb, whose account lives in public.accounts. The schema boundary is
-- the isolation: the server reaches these only as the tenant's own role,
-- which may use no other tenant's schema.
CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES public.accounts (id) ON DELETE RESTRICT,
    email       text COLLATE "C" NOT NULL,
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    password    text NOT NULL,
    is_active   boolean NOT NULL DEFAULT true,
    date_joined timestamptz NOT NULL,
    UNIQUE (account_id, email)
);

CREATE TABLE projects (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES public.accounts (id) ON DELETE RESTRICT,
    name       text COLLATE "C" NOT NULL,
    details    text NOT NULL DEFAULT ''
);

CREATE TABLE tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    name        text COLLATE "C" NOT NULL,
    is_complete boolean NOT NULL DEFAULT false,
    details     text NOT NULL DEFAULT ''
);
CREATE INDEX tasks_project ON tasks (project_id);

CREATE TABLE subtasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     bigint NOT NULL REFERENCES tasks (id) ON DELETE RESTRICT,
    name        text COLLATE "C" NOT NULL,
    is_complete boolean NOT NULL DEFAULT false,
    details     text NOT NULL DEFAULT ''
);
CREATE INDEX subtasks_task ON subtasks (task_id);
-- The list page: subtasks by name, then id.
CREATE INDEX subtasks_name ON subtasks (name, id);

-- The tenant's number of subtasks, kept by statement-level triggers in the
-- same transaction as the change (see public.subtask_counts_apply); its one
-- row is written when the tenant is created.
CREATE TABLE subtask_counts (
    account_id bigint PRIMARY KEY REFERENCES public.accounts (id) ON DELETE RESTRICT,
    subtasks   bigint NOT NULL DEFAULT 0 CHECK (subtasks >= 0)
);

CREATE TRIGGER subtask_counts_insert AFTER INSERT ON subtasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.subtask_counts_apply();
CREATE TRIGGER subtask_counts_delete AFTER DELETE ON subtasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.subtask_counts_apply();
CREATE TRIGGER subtask_counts_truncate AFTER TRUNCATE ON subtasks
    FOR EACH STATEMENT EXECUTE FUNCTION public.subtask_counts_clear();

-- +goose Down
DROP TABLE subtask_counts;
DROP TABLE subtasks;
DROP TABLE tasks;
DROP TABLE projects;
DROP TABLE users;
