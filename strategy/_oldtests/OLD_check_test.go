package strategy

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
)

// findingKinds returns the kinds of fs, sorted and without repeats.
func findingKinds(fs []Finding) []FindingKind {
	var kinds []FindingKind
	for _, f := range fs {
		kinds = append(kinds, f.Kind)
	}
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

func mustCheck(t *testing.T, opts Options) CheckReport {
	t.Helper()
	rep, err := Check(context.Background(), opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return rep
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// breakage is one property of a deployment broken on purpose, and the
// findings Check must report for it: exactly these kinds, and a finding of
// the first kind about subject (in database, when set).
type breakage struct {
	name      string
	in        string // database the statements run in
	breakIt   []string
	undo      []string
	undoFn    func() error // after undo, when statements cannot undo it
	want      []FindingKind
	subject   string
	database  string
	inProblem string // in the first finding's problem, when set
}

// runBreakages breaks each property in turn on one deployment, checks
// the findings, undoes it and checks that the deployment is clean again,
// so each case starts from a deployment with no findings.
func runBreakages(t *testing.T, opts Options, tests []breakage) {
	t.Helper()
	if rep := mustCheck(t, opts); len(rep.Findings) != 0 {
		t.Fatalf("Check of a fresh deployment: findings %v, want none", rep.Findings)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := pgtest.Admin(t, tt.in)
			mustExec(t, db, tt.breakIt...)
			rep := mustCheck(t, opts)
			mustExec(t, db, tt.undo...)
			if tt.undoFn != nil {
				if err := tt.undoFn(); err != nil {
					t.Fatalf("undo: %v", err)
				}
			}

			want := slices.Clone(tt.want)
			slices.Sort(want)
			if got := findingKinds(rep.Findings); !reflect.DeepEqual(got, want) {
				t.Errorf("Check after %s: kinds %v, want %v; findings:\n%s", tt.name, got, want, listFindings(rep.Findings))
			}
			i := slices.IndexFunc(rep.Findings, func(f Finding) bool {
				return f.Kind == tt.want[0] && f.Subject == tt.subject && f.Database == tt.database &&
					strings.Contains(f.Problem, tt.inProblem)
			})
			if i < 0 {
				t.Errorf("Check after %s: no %s finding about %s in database %q (problem mentioning %q); findings:\n%s",
					tt.name, tt.want[0], tt.subject, tt.database, tt.inProblem, listFindings(rep.Findings))
			}
			if after := mustCheck(t, opts); len(after.Findings) != 0 {
				t.Fatalf("Check after undoing %s: %v, want no findings", tt.name, after.Findings)
			}
		})
	}
}

func listFindings(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  [" + string(f.Kind) + "] " + f.String() + "\n")
	}
	return b.String()
}

// TestCheckSingleSchema breaks each property singleschema's isolation rests
// on. The deployment holds no tenant data: the policy probes find leaks
// through the canary tenant Check plants itself.
func TestCheckSingleSchema(t *testing.T) {
	t.Parallel()
	opts, admin, _ := deploy(t, SingleSchema)
	// Grants are made per column (every column but the ids); migrate makes
	// them again exactly.
	regrant := func() error { _, err := admin.Migrate(context.Background(), nil); return err }
	su := opts.Database + "_su"
	t.Cleanup(func() { pgtest.Drop(t, "", su) })
	squatter := opts.Database + "_squatter"
	mustExec(t, pgtest.Admin(t, "postgres"), `CREATE ROLE `+quoteIdent(su)+` NOLOGIN SUPERUSER`, `CREATE ROLE `+quoteIdent(squatter)+` NOLOGIN`)
	app, reader, owner := quoteIdent(opts.AppUser), quoteIdent(opts.ReaderUser), quoteIdent(opts.AdminUser)
	appSubject, readerSubject := `role "`+opts.AppUser+`"`, `role "`+opts.ReaderUser+`"`
	db := opts.Database
	const policy = `CREATE POLICY tenant_isolation ON subtasks
		USING (account_id = (SELECT app_current_tenant())) WITH CHECK (account_id = (SELECT app_current_tenant()))`
	leaks := []FindingKind{FindingPolicyOpenWithoutTenant, FindingPolicyOpenToOtherTenant, FindingPolicyAllowsForeignWrite}

	runBreakages(t, opts, []breakage{
		{name: "app role is a superuser", in: db,
			breakIt: []string{"ALTER ROLE " + app + " SUPERUSER"}, undo: []string{"ALTER ROLE " + app + " NOSUPERUSER"},
			// A superuser bypasses every policy, so the probes get through too.
			want: append([]FindingKind{FindingSuperuser}, leaks...), subject: appSubject},
		{name: "app role has BYPASSRLS", in: db,
			breakIt: []string{"ALTER ROLE " + app + " BYPASSRLS"}, undo: []string{"ALTER ROLE " + app + " NOBYPASSRLS"},
			want: append([]FindingKind{FindingBypassRLS}, leaks...), subject: appSubject},
		{name: "app role is a member of the BYPASSRLS reader", in: db,
			breakIt: []string{"GRANT " + reader + " TO " + app}, undo: []string{"REVOKE " + reader + " FROM " + app},
			want: []FindingKind{FindingPrivilegedMember}, subject: appSubject, inProblem: opts.ReaderUser},
		{name: "app role is a member of a superuser role", in: db,
			breakIt: []string{"GRANT " + quoteIdent(su) + " TO " + app}, undo: []string{"REVOKE " + quoteIdent(su) + " FROM " + app},
			want: []FindingKind{FindingPrivilegedMember}, subject: appSubject, inProblem: su},
		{name: "app role owns a tenanted table", in: db,
			// The owner's privileges pass to app and back to the owner.
			breakIt: []string{"ALTER TABLE subtasks OWNER TO " + app}, undo: []string{"ALTER TABLE subtasks OWNER TO " + owner}, undoFn: regrant,
			// An owner holds every privilege on its table, TRUNCATE included,
			// and the table is no longer the admin's.
			want: []FindingKind{FindingOwnsTable, FindingExtraGrant, FindingForeignObject}, subject: appSubject, database: db, inProblem: "subtasks"},
		{name: "row-level security not forced", in: db,
			breakIt: []string{"ALTER TABLE subtasks NO FORCE ROW LEVEL SECURITY"}, undo: []string{"ALTER TABLE subtasks FORCE ROW LEVEL SECURITY"},
			want: []FindingKind{FindingRLSNotForced}, subject: "table subtasks", database: db},
		{name: "row-level security disabled", in: db,
			breakIt: []string{"ALTER TABLE tasks DISABLE ROW LEVEL SECURITY"}, undo: []string{"ALTER TABLE tasks ENABLE ROW LEVEL SECURITY"},
			want: append([]FindingKind{FindingRLSDisabled}, leaks...), subject: "table tasks", database: db},
		{name: "policy dropped", in: db,
			breakIt: []string{"DROP POLICY tenant_isolation ON subtasks"}, undo: []string{policy},
			want: []FindingKind{FindingPolicyMissing}, subject: "table subtasks", database: db},
		{name: "policy replaced by USING (true)", in: db,
			breakIt: []string{"DROP POLICY tenant_isolation ON subtasks", "CREATE POLICY tenant_isolation ON subtasks USING (true)"},
			undo:    []string{"DROP POLICY tenant_isolation ON subtasks", policy},
			// Both canaries' rows.
			want: append(slices.Clone(leaks), FindingPolicyNotCanonical), subject: "table subtasks", database: db, inProblem: "SELECT (2 rows)"},
		{name: "policy open when no tenant is set", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant()) OR (SELECT app_current_tenant()) IS NULL)"},
			undo:    []string{"ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant()))"},
			want:    []FindingKind{FindingPolicyOpenWithoutTenant, FindingPolicyNotCanonical}, subject: "table users", database: db, inProblem: "UPDATE, DELETE"},
		{name: "WITH CHECK (true)", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON projects WITH CHECK (true)"},
			undo:    []string{"ALTER POLICY tenant_isolation ON projects WITH CHECK (account_id = (SELECT app_current_tenant()))"},
			want:    []FindingKind{FindingPolicyAllowsForeignWrite, FindingPolicyNotCanonical}, subject: "table projects", database: db, inProblem: "INSERT a row of another tenant, UPDATE"},
		{name: "policy for the wrong role", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON subtasks TO " + reader},
			undo:    []string{"ALTER POLICY tenant_isolation ON subtasks TO PUBLIC"},
			want:    []FindingKind{FindingPolicyMissing}, subject: "table subtasks", database: db},
		{name: "a default tenant for the app role", in: db,
			breakIt: []string{"ALTER ROLE " + app + " IN DATABASE " + quoteIdent(db) + " SET app.tenant_id = '1'"},
			undo:    []string{"ALTER ROLE " + app + " IN DATABASE " + quoteIdent(db) + " RESET app.tenant_id"},
			want:    []FindingKind{FindingDefaultTenant}, subject: "setting app.tenant_id", database: db},
		{name: "a new tenanted table without row-level security", in: db,
			breakIt: []string{"CREATE TABLE notes (account_id bigint NOT NULL, body text)", "GRANT SELECT, INSERT ON notes TO " + app},
			undo:    []string{"DROP TABLE notes"},
			want:    []FindingKind{FindingRLSDisabled, FindingRLSNotForced, FindingPolicyMissing, FindingPolicyAllowsForeignWrite}, subject: "table notes", database: db},
		{name: "app role lacks a grant", in: db,
			breakIt: []string{"REVOKE INSERT ON tasks FROM " + app}, undoFn: regrant,
			want: []FindingKind{FindingGrantMissing}, subject: "table tasks", database: db, inProblem: "lacks INSERT (not ids)"},
		{name: "app role may insert ids", in: db,
			breakIt: []string{"GRANT INSERT ON subtasks TO " + app}, undoFn: regrant,
			want: []FindingKind{FindingExtraGrant}, subject: appSubject, database: db, inProblem: "may write ids"},
		{name: "migration pending", in: db,
			breakIt: []string{"DELETE FROM goose_db_version WHERE version_id = 2"},
			undo:    []string{"INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, true)"},
			want:    []FindingKind{FindingMigrationsPending}, subject: "migrations", database: db, inProblem: "00002_row_level_security.sql"},
		{name: "all-tenants role may write", in: db,
			breakIt: []string{"GRANT UPDATE ON tasks TO " + reader}, undo: []string{"REVOKE UPDATE ON tasks FROM " + reader},
			want: []FindingKind{FindingReaderCanWrite}, subject: readerSubject, database: db, inProblem: "tasks"},
		{name: "all-tenants role not read-only", in: db,
			breakIt: []string{"ALTER ROLE " + reader + " SET default_transaction_read_only = off"},
			undo:    []string{"ALTER ROLE " + reader + " SET default_transaction_read_only = on"},
			want:    []FindingKind{FindingReaderNotReadOnly}, subject: readerSubject},
		{name: "a kept subtask count drifted", in: db,
			breakIt: []string{"INSERT INTO accounts (slug, name) VALUES ('tenant-9', 'drift')",
				"INSERT INTO subtask_counts SELECT id, 5 FROM accounts WHERE slug = 'tenant-9'"},
			// The repair the finding suggests must clear it.
			undo: []string{recount[SingleSchema], "DELETE FROM accounts"},
			want: []FindingKind{FindingCountsDrifted}, subject: "table subtask_counts", database: db, inProblem: "1 account(s) (tenant-9)"},
		// Roles and grants that reach past isolation without being a
		// superuser or BYPASSRLS.
		{name: "app role has CREATEROLE", in: db,
			breakIt: []string{"ALTER ROLE " + app + " CREATEROLE"}, undo: []string{"ALTER ROLE " + app + " NOCREATEROLE"},
			want: []FindingKind{FindingCreateRole}, subject: appSubject},
		{name: "app role has REPLICATION", in: db,
			breakIt: []string{"ALTER ROLE " + app + " REPLICATION"}, undo: []string{"ALTER ROLE " + app + " NOREPLICATION"},
			want: []FindingKind{FindingReplication}, subject: appSubject},
		{name: "app role may run programs on the server", in: db,
			breakIt: []string{"GRANT pg_execute_server_program TO " + app}, undo: []string{"REVOKE pg_execute_server_program FROM " + app},
			want: []FindingKind{FindingPredefinedMember}, subject: appSubject, inProblem: "pg_execute_server_program"},
		{name: "app role reads all data", in: db,
			breakIt: []string{"GRANT pg_read_all_data TO " + app}, undo: []string{"REVOKE pg_read_all_data FROM " + app},
			want: []FindingKind{FindingPredefinedMember}, subject: appSubject, inProblem: "pg_read_all_data"},
		{name: "app role may create temporary objects", in: db,
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + quoteIdent(db) + " TO " + app}, undo: []string{"REVOKE TEMPORARY ON DATABASE " + quoteIdent(db) + " FROM " + app},
			want: []FindingKind{FindingCanCreateTemp}, subject: appSubject, database: db},
		{name: "everyone may create temporary objects", in: db,
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + quoteIdent(db) + " TO PUBLIC"}, undo: []string{"REVOKE TEMPORARY ON DATABASE " + quoteIdent(db) + " FROM PUBLIC"},
			// Both runtime roles; the first finding is the app's.
			want: []FindingKind{FindingCanCreateTemp}, subject: appSubject, database: db},
		{name: "app role may create in public", in: db,
			breakIt: []string{"GRANT CREATE ON SCHEMA public TO " + app}, undo: []string{"REVOKE CREATE ON SCHEMA public FROM " + app},
			want: []FindingKind{FindingCanCreate}, subject: appSubject, database: db, inProblem: "schema public"},
		{name: "TRUNCATE granted on a tenanted table", in: db,
			breakIt: []string{"GRANT TRUNCATE ON subtasks TO " + app}, undo: []string{"REVOKE TRUNCATE ON subtasks FROM " + app},
			want: []FindingKind{FindingExtraGrant}, subject: appSubject, database: db, inProblem: "TRUNCATE ignores row-level security"},
		{name: "TRIGGER granted on a tenanted table", in: db,
			breakIt: []string{"GRANT TRIGGER ON tasks TO " + app}, undo: []string{"REVOKE TRIGGER ON tasks FROM " + app},
			want: []FindingKind{FindingExtraGrant}, subject: appSubject, database: db, inProblem: "TRIGGER on tasks"},
		{name: "app role may write accounts", in: db,
			breakIt: []string{"GRANT UPDATE ON accounts TO " + app}, undo: []string{"REVOKE UPDATE ON accounts FROM " + app},
			want: []FindingKind{FindingExtraGrant}, subject: appSubject, database: db, inProblem: "UPDATE on accounts"},
		{name: "a view over subtasks owned by the admin", in: db,
			breakIt: []string{"CREATE VIEW every_subtask AS SELECT * FROM subtasks", "GRANT SELECT ON every_subtask TO " + app},
			undo:    []string{"DROP VIEW every_subtask"},
			want:    []FindingKind{FindingViewBypassesRLS}, subject: "view every_subtask", database: db},
		{name: "a view over a view over tasks", in: db,
			breakIt: []string{"CREATE VIEW inner_tasks AS SELECT * FROM tasks", "CREATE VIEW outer_tasks AS SELECT id FROM inner_tasks", "GRANT SELECT ON outer_tasks TO " + app},
			undo:    []string{"DROP VIEW outer_tasks", "DROP VIEW inner_tasks"},
			want:    []FindingKind{FindingViewBypassesRLS}, subject: "view outer_tasks", database: db},
		{name: "a materialized view over subtasks", in: db,
			breakIt: []string{"CREATE MATERIALIZED VIEW subtask_totals AS SELECT account_id, count(*) FROM subtasks GROUP BY account_id", "GRANT SELECT ON subtask_totals TO " + app},
			undo:    []string{"DROP MATERIALIZED VIEW subtask_totals"},
			want:    []FindingKind{FindingViewBypassesRLS}, subject: "materialized view subtask_totals", database: db},
		{name: "a SECURITY DEFINER function returning tenant rows", in: db,
			breakIt: []string{`CREATE FUNCTION public.every_project() RETURNS SETOF public.projects LANGUAGE sql SECURITY DEFINER
				SET search_path = pg_catalog, pg_temp AS 'SELECT * FROM public.projects'`},
			undo: []string{"DROP FUNCTION public.every_project()"},
			want: []FindingKind{FindingDefinerCallable}, subject: "function every_project()", database: db},
		{name: "a SECURITY DEFINER trigger without pg_temp last", in: db,
			breakIt: []string{`CREATE FUNCTION public.note_task() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
				SET search_path = pg_catalog, public AS $$ BEGIN RETURN NULL; END $$`,
				"REVOKE ALL ON FUNCTION public.note_task() FROM PUBLIC",
				"CREATE TRIGGER note_task AFTER INSERT ON tasks FOR EACH STATEMENT EXECUTE FUNCTION public.note_task()"},
			undo: []string{"DROP TRIGGER note_task ON tasks", "DROP FUNCTION public.note_task()"},
			want: []FindingKind{FindingDefinerSearchPath}, subject: "function note_task()", database: db, inProblem: "fires it"},
		{name: "a table reached only through a foreign key", in: db,
			breakIt: []string{"CREATE TABLE comments (id bigint PRIMARY KEY, task_id bigint REFERENCES tasks (id), body text)", "GRANT SELECT, INSERT ON comments TO " + app},
			undo:    []string{"DROP TABLE comments"},
			want:    []FindingKind{FindingNoTenantColumn, FindingRLSDisabled, FindingRLSNotForced, FindingPolicyMissing}, subject: "table comments", database: db},
		{name: "a tenant column with another name", in: db,
			breakIt: []string{"CREATE TABLE notes (id bigint, org_id bigint REFERENCES accounts (id), body text)", "GRANT SELECT, INSERT ON notes TO " + app},
			undo:    []string{"DROP TABLE notes"},
			want:    []FindingKind{FindingRLSDisabled, FindingRLSNotForced, FindingPolicyMissing, FindingPolicyAllowsForeignWrite}, subject: "table notes", database: db},
		{name: "a table that is neither tenanted nor shared", in: db,
			breakIt: []string{"CREATE TABLE settings (k text, v text)", "GRANT SELECT ON settings TO " + app},
			undo:    []string{"DROP TABLE settings"},
			want:    []FindingKind{FindingUntenantedTable}, subject: "table settings", database: db},
		{name: "a policy that lets a tenant read lower ids (<=)", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON subtasks USING (account_id <= (SELECT app_current_tenant()))"},
			undo:    []string{"ALTER POLICY tenant_isolation ON subtasks USING (account_id = (SELECT app_current_tenant()))"},
			want:    []FindingKind{FindingPolicyOpenToOtherTenant, FindingPolicyNotCanonical}, subject: "table subtasks", database: db},
		{name: "a policy that lets a tenant read higher ids (>=)", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON projects USING (account_id >= (SELECT app_current_tenant()))"},
			undo:    []string{"ALTER POLICY tenant_isolation ON projects USING (account_id = (SELECT app_current_tenant()))"},
			want:    []FindingKind{FindingPolicyOpenToOtherTenant, FindingPolicyNotCanonical}, subject: "table projects", database: db},
		{name: "an extra permissive policy for one tenant", in: db,
			breakIt: []string{"CREATE POLICY tenant_one ON tasks USING (account_id = 1)"},
			undo:    []string{"DROP POLICY tenant_one ON tasks"},
			want:    []FindingKind{FindingPolicyNotCanonical}, subject: "table tasks", database: db, inProblem: "tenant_one"},
		{name: "a policy that trusts session_user", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant()) OR session_user = 'operator')"},
			undo:    []string{"ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant()))"},
			want:    []FindingKind{FindingPolicyNotCanonical}, subject: "table users", database: db},
		{name: "app_current_tenant with a default", in: db,
			breakIt: []string{`CREATE OR REPLACE FUNCTION app_current_tenant() RETURNS bigint LANGUAGE sql STABLE
				AS $$ SELECT coalesce(nullif(current_setting('app.tenant_id', true), '')::bigint, 1) $$`},
			undo: []string{`CREATE OR REPLACE FUNCTION app_current_tenant() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE
				AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::bigint $$`},
			want: []FindingKind{FindingPolicyNotCanonical}, subject: "function public.app_current_tenant()", database: db},
		{name: `a search_path with "$user" for the app role`, in: db,
			breakIt: []string{"ALTER ROLE " + app + ` IN DATABASE ` + quoteIdent(db) + ` SET search_path = "$user", public`},
			undo:    []string{"ALTER ROLE " + app + " IN DATABASE " + quoteIdent(db) + " SET search_path = public"},
			want:    []FindingKind{FindingRoleSetting}, subject: appSubject, database: db, inProblem: "$user"},
		{name: "no search_path for the app role", in: db,
			breakIt: []string{"ALTER ROLE " + app + " IN DATABASE " + quoteIdent(db) + " RESET search_path"},
			undo:    []string{"ALTER ROLE " + app + " IN DATABASE " + quoteIdent(db) + " SET search_path = public"},
			want:    []FindingKind{FindingRoleSetting}, subject: appSubject, database: db, inProblem: "no search_path"},
		{name: "the app role's sessions act as another role", in: db,
			breakIt: []string{"ALTER ROLE " + app + " SET role = " + quoteLiteral(opts.ReaderUser)},
			undo:    []string{"ALTER ROLE " + app + " RESET role"},
			want:    []FindingKind{FindingRoleSetting}, subject: appSubject, database: db, inProblem: "role = "},
		{name: "a schema named after the app role", in: db,
			breakIt: []string{"CREATE SCHEMA " + app + " AUTHORIZATION " + quoteIdent(squatter)},
			undo:    []string{"DROP SCHEMA " + app},
			want:    []FindingKind{FindingForeignSchema}, subject: "schema " + app, database: db},
		{name: "a table of another role in public", in: db,
			breakIt: []string{"CREATE TABLE squat (x int)", "ALTER TABLE squat OWNER TO " + quoteIdent(squatter)},
			undo:    []string{"DROP TABLE squat"},
			want:    []FindingKind{FindingForeignObject}, subject: "schema public", database: db, inProblem: "table squat (owned by " + squatter + ")"},
		{name: "the database owned by another role", in: "postgres",
			breakIt: []string{"ALTER DATABASE " + quoteIdent(db) + " OWNER TO " + quoteIdent(squatter)},
			undo:    []string{"ALTER DATABASE " + quoteIdent(db) + " OWNER TO " + owner},
			want:    []FindingKind{FindingForeignObject}, subject: `database "` + db + `"`, database: db},
		{name: "all-tenants role may read password hashes", in: db,
			breakIt: []string{"GRANT SELECT (password) ON users TO " + reader}, undo: []string{"REVOKE SELECT (password) ON users FROM " + reader},
			// Any column of users is more than the all-tenants pages read.
			want: []FindingKind{FindingReaderReadsSecrets, FindingExtraGrant}, subject: readerSubject, database: db},
		{name: "all-tenants role may TRUNCATE", in: db,
			breakIt: []string{"GRANT TRUNCATE ON subtasks TO " + reader}, undo: []string{"REVOKE TRUNCATE ON subtasks FROM " + reader},
			want: []FindingKind{FindingReaderCanWrite}, subject: readerSubject, database: db, inProblem: "TRUNCATE"},
		{name: "all-tenants role may create temporary objects", in: db,
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + quoteIdent(db) + " TO " + reader}, undo: []string{"REVOKE TEMPORARY ON DATABASE " + quoteIdent(db) + " FROM " + reader},
			want: []FindingKind{FindingCanCreateTemp}, subject: readerSubject, database: db},
		{name: "all-tenants role lacks BYPASSRLS", in: db,
			breakIt: []string{"ALTER ROLE " + reader + " NOBYPASSRLS"}, undo: []string{"ALTER ROLE " + reader + " BYPASSRLS"},
			want: []FindingKind{FindingReaderNoBypassRLS}, subject: readerSubject},
	})
}

func TestCheckMultiDB(t *testing.T) {
	t.Parallel()
	opts, admin, _ := deploy(t, MultiDB)
	app, owner := quoteIdent(opts.AppUser), quoteIdent(opts.AdminUser)
	appSubject := `role "` + opts.AppUser + `"`
	runBreakages(t, opts, []breakage{
		{name: "tenant database dropped", in: "postgres",
			breakIt: []string{"DROP DATABASE " + quoteIdent(opts.TenantDatabase(2)) + " WITH (FORCE)"},
			undoFn: func() error {
				_, err := admin.Setup(context.Background(), nil)
				return err
			},
			want: []FindingKind{FindingDatabaseMissing}, subject: `database "` + opts.TenantDatabase(2) + `"`},
		{name: "migration pending in one tenant database", in: opts.TenantDatabase(1),
			breakIt: []string{"DELETE FROM goose_db_version WHERE version_id = 1"},
			undo:    []string{"INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, true)"},
			want:    []FindingKind{FindingMigrationsPending}, subject: "migrations", database: opts.TenantDatabase(1), inProblem: "00001_schema.sql"},
		{name: "app role owns a tenant's table", in: opts.TenantDatabase(0),
			// The owner's privileges pass to app and back to the owner.
			breakIt: []string{"ALTER TABLE projects OWNER TO " + app}, undo: []string{"ALTER TABLE projects OWNER TO " + owner},
			undoFn: func() error { _, err := admin.Migrate(context.Background(), nil); return err },
			// An owner holds every privilege on its table, TRUNCATE included,
			// and the table is no longer the admin's.
			want: []FindingKind{FindingOwnsTable, FindingExtraGrant, FindingForeignObject}, subject: appSubject, database: opts.TenantDatabase(0), inProblem: "projects"},
		{name: "app role is a superuser", in: "postgres",
			breakIt: []string{"ALTER ROLE " + app + " SUPERUSER"}, undo: []string{"ALTER ROLE " + app + " NOSUPERUSER"},
			want: []FindingKind{FindingSuperuser}, subject: appSubject},
		{name: "a kept subtask count drifted", in: opts.TenantDatabase(1),
			breakIt: []string{"INSERT INTO accounts (slug, name) VALUES ('tenant-1', 'drift')",
				"INSERT INTO subtask_counts SELECT id, 5 FROM accounts"},
			undo: []string{recount[MultiDB], "DELETE FROM subtask_counts", "DELETE FROM accounts"},
			want: []FindingKind{FindingCountsDrifted}, subject: "table subtask_counts", database: opts.TenantDatabase(1), inProblem: "1 account(s) (tenant-1)"},
		{name: "app role has BYPASSRLS", in: "postgres",
			breakIt: []string{"ALTER ROLE " + app + " BYPASSRLS"}, undo: []string{"ALTER ROLE " + app + " NOBYPASSRLS"},
			want: []FindingKind{FindingBypassRLS}, subject: appSubject},
		// What a tenant database grants the app role, one database at a time.
		{name: "a grant revoked in one tenant database", in: opts.TenantDatabase(2),
			breakIt: []string{"REVOKE SELECT ON subtasks FROM " + app}, undo: []string{"GRANT SELECT ON subtasks TO " + app},
			want: []FindingKind{FindingGrantMissing}, subject: "table subtasks", database: opts.TenantDatabase(2), inProblem: "lacks SELECT"},
		{name: "TEMPORARY in one tenant database", in: opts.TenantDatabase(1),
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + quoteIdent(opts.TenantDatabase(1)) + " TO " + app},
			undo:    []string{"REVOKE TEMPORARY ON DATABASE " + quoteIdent(opts.TenantDatabase(1)) + " FROM " + app},
			want:    []FindingKind{FindingCanCreateTemp}, subject: appSubject, database: opts.TenantDatabase(1)},
		{name: "TRUNCATE in one tenant database", in: opts.TenantDatabase(0),
			breakIt: []string{"GRANT TRUNCATE ON users TO " + app}, undo: []string{"REVOKE TRUNCATE ON users FROM " + app},
			want: []FindingKind{FindingExtraGrant}, subject: appSubject, database: opts.TenantDatabase(0), inProblem: "TRUNCATE on users"},
		{name: "a SECURITY DEFINER function in one tenant database", in: opts.TenantDatabase(0),
			breakIt: []string{`CREATE FUNCTION public.escape() RETURNS void LANGUAGE sql SECURITY DEFINER AS 'SELECT'`},
			undo:    []string{"DROP FUNCTION public.escape()"},
			want:    []FindingKind{FindingDefinerCallable, FindingDefinerSearchPath}, subject: "function escape()", database: opts.TenantDatabase(0)},
		{name: "a count trigger searching the caller's schemas first", in: opts.TenantDatabase(1),
			breakIt: []string{"ALTER FUNCTION public.subtask_counts_apply() SET search_path = pg_catalog, public"},
			undo:    []string{"ALTER FUNCTION public.subtask_counts_apply() SET search_path = pg_catalog, pg_temp"},
			want:    []FindingKind{FindingDefinerSearchPath}, subject: "function subtask_counts_apply()", database: opts.TenantDatabase(1)},
		{name: "a schema named after the app role in one tenant database", in: opts.TenantDatabase(2),
			breakIt: []string{"CREATE SCHEMA " + app}, undo: []string{"DROP SCHEMA " + app},
			want: []FindingKind{FindingForeignSchema}, subject: "schema " + app, database: opts.TenantDatabase(2)},
		{name: "TEMPORARY in the base database", in: opts.Database,
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + quoteIdent(opts.Database) + " TO PUBLIC"},
			undo:    []string{"REVOKE TEMPORARY ON DATABASE " + quoteIdent(opts.Database) + " FROM PUBLIC"},
			want:    []FindingKind{FindingCanCreate}, subject: appSubject, database: opts.Database},
	})
}

// TestCheckBeforeSetup: nothing exists yet, which Check reports as
// findings saying to run setup, not as an error.
func TestCheckBeforeSetup(t *testing.T) {
	t.Parallel()
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions(t, name)
			rep := mustCheck(t, opts)
			kinds := findingKinds(rep.Findings)
			want := []FindingKind{FindingDatabaseMissing, FindingRoleMissing}
			if !reflect.DeepEqual(kinds, want) || rep.IsolationFindings() != 0 {
				t.Errorf("Check before setup: kinds %v (%d breaking isolation), want %v (none)", kinds, rep.IsolationFindings(), want)
			}
			for _, f := range rep.Findings {
				if !strings.Contains(f.Fix, "tenancy setup") {
					t.Errorf("finding %s: fix %q, want it to say to run `tenancy setup`", f, f.Fix)
				}
			}
		})
	}
}

// TestCheckLeavesNoTrace: the probes' canary tenant and writes are rolled
// back.
func TestCheckLeavesNoTrace(t *testing.T) {
	t.Parallel()
	opts, _, a, _ := twoTenants(t)
	db := pgtest.Admin(t, opts.Database)
	count := func() (n int) {
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM users) + (SELECT count(*) FROM projects)
			+ (SELECT count(*) FROM tasks) + (SELECT count(*) FROM subtasks WHERE account_id = $1)`, a.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	if rep := mustCheck(t, opts); len(rep.Findings) != 0 {
		t.Fatalf("Check of a seeded deployment: %v, want no findings", rep.Findings)
	}
	if after := count(); after != before {
		t.Errorf("rows after Check = %d, want %d as before", after, before)
	}
}

// TestOpenRefusesBrokenPolicies: the server runs, as the app role, the
// checks of Check that it can, and refuses to start on a finding.
func TestOpenRefusesBrokenPolicies(t *testing.T) {
	t.Parallel()
	opts, _, a, _ := twoTenants(t)
	db := pgtest.Admin(t, opts.Database)
	app := quoteIdent(opts.AppUser)
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
		{"a table with tenant rows and no tenant column", []string{"CREATE TABLE comments (task_id bigint REFERENCES tasks (id))", "GRANT SELECT ON comments TO " + app},
			[]string{"DROP TABLE comments"}, []string{"table comments", "no account_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustExec(t, db, tt.breakIt...)
			s, err := Open(context.Background(), opts)
			mustExec(t, db, tt.undo...)
			if err == nil {
				s.Close()
				t.Fatalf("Open with %s: started, want a refusal", tt.name)
			}
			if !errors.Is(err, ErrUnsafeDeployment) {
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
