package singleschema

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/strategytest"
)

// TestOpenRefusesBrokenPolicies: the server runs, as the app role, the
// checks of Check that it can, and refuses to start on a finding.
func TestOpenRefusesBrokenPolicies(t *testing.T) {
	t.Parallel()
	opts, _, a, _ := twoTenants(t)
	db := pgtest.Admin(t, opts.Database)
	app := pg.QuoteIdent(opts.AppUser)
	const policy = `CREATE POLICY tenant_isolation ON subtasks
		USING (account_id = (SELECT app_current_tenant())) WITH CHECK (account_id = (SELECT app_current_tenant()))`
	tests := []struct {
		name          string
		breakIt, undo []string
		want          []string // in the error
	}{
		{"row-level security disabled", []string{"ALTER TABLE subtasks DISABLE ROW LEVEL SECURITY"}, []string{"ALTER TABLE subtasks ENABLE ROW LEVEL SECURITY"},
			[]string{"table subtasks", "row-level security is disabled", "could SELECT (8 rows)"}},
		{"not forced", []string{"ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY"}, []string{"ALTER TABLE tasks FORCE ROW LEVEL SECURITY"},
			[]string{"table tasks", "not forced"}},
		{"policy dropped", []string{"DROP POLICY tenant_isolation ON subtasks"}, []string{policy},
			[]string{"table subtasks", "no policy applies"}},
		{"USING (true)", []string{"DROP POLICY tenant_isolation ON subtasks", "CREATE POLICY tenant_isolation ON subtasks USING (true)"},
			[]string{"DROP POLICY tenant_isolation ON subtasks", policy},
			[]string{"with no tenant set", "could SELECT (8 rows)", "INSERT a row of another tenant"}},
		{"WITH CHECK (true)", []string{"ALTER POLICY tenant_isolation ON users WITH CHECK (true)"},
			[]string{"ALTER POLICY tenant_isolation ON users WITH CHECK (account_id = (SELECT app_current_tenant()))"},
			[]string{"table users", "INSERT a row of another tenant: WITH CHECK let it through"}},
		{"a default tenant", []string{"ALTER ROLE " + app + " SET app.tenant_id = '" + strconv.FormatInt(int64(a.ID), 10) + "'"}, []string{"ALTER ROLE " + app + " RESET app.tenant_id"},
			[]string{"starts its sessions with a tenant", "with no tenant set"}},
		{"<= instead of =", []string{"ALTER POLICY tenant_isolation ON subtasks USING (account_id <= (SELECT app_current_tenant()))"},
			[]string{"ALTER POLICY tenant_isolation ON subtasks USING (account_id = (SELECT app_current_tenant()))"},
			[]string{"policy tenant_isolation applies", "<="}},
		{"a view past the policies", []string{"CREATE VIEW every_task AS SELECT * FROM tasks", "GRANT SELECT ON every_task TO " + app},
			[]string{"DROP VIEW every_task"}, []string{"view every_task", "shows every tenant's rows"}},
		{"a SECURITY DEFINER function the app may call", []string{`CREATE FUNCTION public.every_user() RETURNS SETOF public.users
			LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'SELECT * FROM public.users'`},
			[]string{"DROP FUNCTION public.every_user()"}, []string{"function every_user()", "SECURITY DEFINER"}},
		{"a count trigger without pg_temp last", []string{"ALTER FUNCTION subtask_counts_apply() RESET search_path"},
			[]string{"ALTER FUNCTION subtask_counts_apply() SET search_path = pg_catalog, pg_temp"}, []string{"function subtask_counts_apply()", "sets no search_path"}},
		{"a schema named after the app role", []string{"CREATE SCHEMA " + app}, []string{"DROP SCHEMA " + app}, []string{"schema " + app}},
		{"a table with tenant rows and no tenant column", []string{"CREATE TABLE comments (task_account bigint, task_id bigint, FOREIGN KEY (task_account, task_id) REFERENCES tasks (account_id, id))", "GRANT SELECT ON comments TO " + app},
			[]string{"DROP TABLE comments"}, []string{"table comments", "no account_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strategytest.MustExec(t, db, tt.breakIt...)
			s, err := Open(context.Background(), opts)
			strategytest.MustExec(t, db, tt.undo...)
			if err == nil {
				s.Close()
				t.Fatalf("Open with %s: started, want a refusal", tt.name)
			}
			if !errors.Is(err, strategy.ErrUnsafeDeployment) {
				t.Errorf("Open with %s: err = %v, want ErrUnsafeDeployment", tt.name, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open with %s: err = %v\nwant it to mention %q", tt.name, err, w)
				}
			}
		})
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open after undoing every change: %v", err)
	}
	s.Close()
}
