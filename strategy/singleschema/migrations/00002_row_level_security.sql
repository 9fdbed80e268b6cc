-- +goose Up
-- The fail-safe behind the gorm tenant scope. The application sets
-- app.tenant_id with set_config(..., true) at the start of every tenant
-- transaction, so the setting dies with the transaction and never survives on
-- a pooled connection. With no tenant set, the function returns NULL and no
-- row matches: the policies fail closed for reads and writes alike.
-- +goose StatementBegin
CREATE FUNCTION app_current_tenant() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::bigint $$;
-- +goose StatementEnd

-- FORCE makes the policies apply to the tables' owner too (superusers and
-- BYPASSRLS roles still bypass them; the server refuses to run as either).
-- The policy's (SELECT app_current_tenant()) is evaluated once per statement.
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON accounts
    USING (id = (SELECT app_current_tenant()))
    WITH CHECK (id = (SELECT app_current_tenant()));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (account_id = (SELECT app_current_tenant()))
    WITH CHECK (account_id = (SELECT app_current_tenant()));

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON projects
    USING (account_id = (SELECT app_current_tenant()))
    WITH CHECK (account_id = (SELECT app_current_tenant()));

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasks
    USING (account_id = (SELECT app_current_tenant()))
    WITH CHECK (account_id = (SELECT app_current_tenant()));

ALTER TABLE subtasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE subtasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subtasks
    USING (account_id = (SELECT app_current_tenant()))
    WITH CHECK (account_id = (SELECT app_current_tenant()));

-- +goose Down
DROP POLICY tenant_isolation ON subtasks;
DROP POLICY tenant_isolation ON tasks;
DROP POLICY tenant_isolation ON projects;
DROP POLICY tenant_isolation ON users;
DROP POLICY tenant_isolation ON accounts;
ALTER TABLE subtasks NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE projects NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE users NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
DROP FUNCTION app_current_tenant();
