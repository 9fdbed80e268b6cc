package audit_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multidb/directory"
	multidbmigrations "tenancy/strategy/multidb/migrations"
	"tenancy/strategy/multischema"
	multischemamigrations "tenancy/strategy/multischema/migrations"
	singleschemamigrations "tenancy/strategy/singleschema/migrations"
	"tenancy/strategy/strategies"
	"tenancy/strategy/strategytest"
)

// harness opens the strategy name through package strategies, as the
// tenancy command does. (This is an external test package: strategies
// and the implementations import audit.)
func harness(name string) strategytest.Harness {
	h := strategytest.Harness{Name: name, Open: strategies.Open, OpenAdmin: strategies.OpenAdmin}
	switch name {
	case strategy.SingleSchema:
		h.TenantDatabase = func(o strategy.Options, _ string) string { return o.Database }
		h.Databases = func(o strategy.Options) []string { return []string{o.Database} }
		h.Migrations = singleschemamigrations.FS()
		h.ThroughPgBouncer = true
	case strategy.MultiDB:
		h.TenantDatabase = func(o strategy.Options, slug string) string {
			i, _ := strategy.ParseSlug(slug)
			return o.TenantDatabase(i)
		}
		h.Databases = func(o strategy.Options) []string {
			dbs := []string{o.Database, o.Database + "_tenant-template"}
			for i := range o.TenantCount {
				dbs = append(dbs, o.TenantDatabase(i))
			}
			return dbs
		}
		h.Migrations = multidbmigrations.FS()
	case strategy.MultiSchema:
		h.TenantDatabase = func(o strategy.Options, _ string) string { return o.Database }
		h.TenantSchema = multischema.SchemaOf
		h.Databases = func(o strategy.Options) []string { return []string{o.Database} }
		h.Migrations = multischemamigrations.Tenant()
	}
	return h
}

// findingKinds returns the kinds of fs, sorted and without repeats.
func findingKinds(fs []audit.Finding) []audit.FindingKind {
	var kinds []audit.FindingKind
	for _, f := range fs {
		kinds = append(kinds, f.Kind)
	}
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

func mustCheck(t *testing.T, opts strategy.Options) audit.Report {
	t.Helper()
	rep, err := strategies.Check(context.Background(), opts)
	if err != nil {
		t.Fatalf("strategies.Check(%s): %v", opts.Strategy, err)
	}
	return rep
}

// recountPrefix comes before the SQL in a drifted-counts finding's fix.
const recountPrefix = "recount them as the admin (psql): "

// recount is the SQL the drifted-counts finding in rep suggests.
func recount(t *testing.T, rep audit.Report) string {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Kind != audit.FindingCountsDrifted {
			continue
		}
		_, sql, ok := strings.Cut(f.Fix, recountPrefix)
		if !ok || sql == "" {
			t.Fatalf("finding %s: fix %q, want it to give the SQL after %q", f, f.Fix, recountPrefix)
		}
		return sql
	}
	t.Fatalf("strategies.Check: no %s finding to take the recount from; findings:\n%s", audit.FindingCountsDrifted, listFindings(rep.Findings))
	return ""
}

// breakage is one property of a deployment broken on purpose, and the
// findings Check must report for it: exactly these kinds, and a finding of
// the first kind about subject (in database, when set).
type breakage struct {
	name      string
	in        string // database the statements run in
	breakIt   []string
	undo      []string
	recount   bool         // run the recount the drifted-counts finding suggests, before undo
	undoFn    func() error // after undo, when statements cannot undo it
	want      []audit.FindingKind
	subject   string
	database  string
	inProblem string // in the first finding's problem, when set
}

// runBreakages breaks each property in turn on one deployment, checks
// the findings, undoes it and checks that the deployment is clean again,
// so each case starts from a deployment with no findings.
func runBreakages(t *testing.T, opts strategy.Options, tests []breakage) {
	t.Helper()
	if rep := mustCheck(t, opts); len(rep.Findings) != 0 {
		t.Fatalf("Check of a fresh deployment: findings %v, want none", rep.Findings)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := pgtest.Admin(t, tt.in)
			strategytest.MustExec(t, db, tt.breakIt...)
			rep := mustCheck(t, opts)
			if tt.recount {
				strategytest.MustExec(t, db, recount(t, rep))
			}
			strategytest.MustExec(t, db, tt.undo...)
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
			i := slices.IndexFunc(rep.Findings, func(f audit.Finding) bool {
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

func listFindings(fs []audit.Finding) string {
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
	opts, admin, _ := strategytest.Deploy(t, harness(strategy.SingleSchema))
	// Grants are made per column (every column but the ids); migrate makes
	// them again exactly.
	regrant := func() error {
		_, err := admin.Migrate(context.Background(), nil, strategy.MigrateOptions{})
		return err
	}
	su := opts.Database + "_su"
	t.Cleanup(func() { pgtest.Drop(t, "", su) })
	squatter := opts.Database + "_squatter"
	strategytest.MustExec(t, pgtest.Admin(t, "postgres"), `CREATE ROLE `+pg.QuoteIdent(su)+` NOLOGIN SUPERUSER`, `CREATE ROLE `+pg.QuoteIdent(squatter)+` NOLOGIN`)
	app, reader, owner := pg.QuoteIdent(opts.AppUser), pg.QuoteIdent(opts.ReaderUser), pg.QuoteIdent(opts.AdminUser)
	appSubject, readerSubject := `role "`+opts.AppUser+`"`, `role "`+opts.ReaderUser+`"`
	db := opts.Database
	const policy = `CREATE POLICY tenant_isolation ON subtasks
		USING (account_id = (SELECT app_current_tenant())) WITH CHECK (account_id = (SELECT app_current_tenant()))`
	leaks := []audit.FindingKind{audit.FindingPolicyOpenWithoutTenant, audit.FindingPolicyOpenToOtherTenant, audit.FindingPolicyAllowsForeignWrite}

	runBreakages(t, opts, []breakage{
		{name: "app role is a superuser", in: db,
			breakIt: []string{"ALTER ROLE " + app + " SUPERUSER"}, undo: []string{"ALTER ROLE " + app + " NOSUPERUSER"},
			// A superuser bypasses every policy, so the probes get through too.
			want: append([]audit.FindingKind{audit.FindingSuperuser}, leaks...), subject: appSubject},
		{name: "app role has BYPASSRLS", in: db,
			breakIt: []string{"ALTER ROLE " + app + " BYPASSRLS"}, undo: []string{"ALTER ROLE " + app + " NOBYPASSRLS"},
			want: append([]audit.FindingKind{audit.FindingBypassRLS}, leaks...), subject: appSubject},
		{name: "app role is a member of the BYPASSRLS reader", in: db,
			breakIt: []string{"GRANT " + reader + " TO " + app}, undo: []string{"REVOKE " + reader + " FROM " + app},
			want: []audit.FindingKind{audit.FindingPrivilegedMember}, subject: appSubject, inProblem: opts.ReaderUser},
		{name: "app role is a member of a superuser role", in: db,
			breakIt: []string{"GRANT " + pg.QuoteIdent(su) + " TO " + app}, undo: []string{"REVOKE " + pg.QuoteIdent(su) + " FROM " + app},
			want: []audit.FindingKind{audit.FindingPrivilegedMember}, subject: appSubject, inProblem: su},
		{name: "app role owns a tenanted table", in: db,
			// The owner's privileges pass to app and back to the owner.
			breakIt: []string{"ALTER TABLE subtasks OWNER TO " + app}, undo: []string{"ALTER TABLE subtasks OWNER TO " + owner}, undoFn: regrant,
			// An owner holds every privilege on its table, TRUNCATE included,
			// and the table is no longer the admin's.
			want: []audit.FindingKind{audit.FindingOwnsTable, audit.FindingExtraGrant, audit.FindingForeignObject}, subject: appSubject, database: db, inProblem: "subtasks"},
		{name: "row-level security not forced", in: db,
			breakIt: []string{"ALTER TABLE subtasks NO FORCE ROW LEVEL SECURITY"}, undo: []string{"ALTER TABLE subtasks FORCE ROW LEVEL SECURITY"},
			want: []audit.FindingKind{audit.FindingRLSNotForced}, subject: "table subtasks", database: db},
		{name: "row-level security disabled", in: db,
			breakIt: []string{"ALTER TABLE tasks DISABLE ROW LEVEL SECURITY"}, undo: []string{"ALTER TABLE tasks ENABLE ROW LEVEL SECURITY"},
			want: append([]audit.FindingKind{audit.FindingRLSDisabled}, leaks...), subject: "table tasks", database: db},
		{name: "policy dropped", in: db,
			breakIt: []string{"DROP POLICY tenant_isolation ON subtasks"}, undo: []string{policy},
			want: []audit.FindingKind{audit.FindingPolicyMissing}, subject: "table subtasks", database: db},
		{name: "policy replaced by USING (true)", in: db,
			breakIt: []string{"DROP POLICY tenant_isolation ON subtasks", "CREATE POLICY tenant_isolation ON subtasks USING (true)"},
			undo:    []string{"DROP POLICY tenant_isolation ON subtasks", policy},
			// Both canaries' rows.
			want: append(slices.Clone(leaks), audit.FindingPolicyNotCanonical), subject: "table subtasks", database: db, inProblem: "SELECT (2 rows)"},
		{name: "policy open when no tenant is set", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant()) OR (SELECT app_current_tenant()) IS NULL)"},
			undo:    []string{"ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant()))"},
			want:    []audit.FindingKind{audit.FindingPolicyOpenWithoutTenant, audit.FindingPolicyNotCanonical}, subject: "table users", database: db, inProblem: "UPDATE, DELETE"},
		{name: "WITH CHECK (true)", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON projects WITH CHECK (true)"},
			undo:    []string{"ALTER POLICY tenant_isolation ON projects WITH CHECK (account_id = (SELECT app_current_tenant()))"},
			want:    []audit.FindingKind{audit.FindingPolicyAllowsForeignWrite, audit.FindingPolicyNotCanonical}, subject: "table projects", database: db, inProblem: "INSERT a row of another tenant, UPDATE"},
		{name: "policy for the wrong role", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON subtasks TO " + reader},
			undo:    []string{"ALTER POLICY tenant_isolation ON subtasks TO PUBLIC"},
			want:    []audit.FindingKind{audit.FindingPolicyMissing}, subject: "table subtasks", database: db},
		{name: "a default tenant for the app role", in: db,
			breakIt: []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " SET app.tenant_id = '1'"},
			undo:    []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " RESET app.tenant_id"},
			want:    []audit.FindingKind{audit.FindingDefaultTenant}, subject: "setting app.tenant_id", database: db},
		{name: "a new tenanted table without row-level security", in: db,
			breakIt: []string{"CREATE TABLE notes (account_id bigint NOT NULL, body text)", "GRANT SELECT, INSERT ON notes TO " + app},
			undo:    []string{"DROP TABLE notes"},
			want:    []audit.FindingKind{audit.FindingRLSDisabled, audit.FindingRLSNotForced, audit.FindingPolicyMissing, audit.FindingPolicyAllowsForeignWrite}, subject: "table notes", database: db},
		{name: "app role lacks a grant", in: db,
			breakIt: []string{"REVOKE INSERT ON tasks FROM " + app}, undoFn: regrant,
			want: []audit.FindingKind{audit.FindingGrantMissing}, subject: "table tasks", database: db, inProblem: "lacks INSERT (not ids)"},
		{name: "app role may insert ids", in: db,
			breakIt: []string{"GRANT INSERT ON subtasks TO " + app}, undoFn: regrant,
			want: []audit.FindingKind{audit.FindingExtraGrant}, subject: appSubject, database: db, inProblem: "may write ids"},
		{name: "migration pending", in: db,
			breakIt: []string{"DELETE FROM goose_db_version WHERE version_id = 2"},
			undo:    []string{"INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, true)"},
			want:    []audit.FindingKind{audit.FindingMigrationsPending}, subject: "migrations", database: db, inProblem: "00002_row_level_security.sql"},
		{name: "all-tenants role may write", in: db,
			breakIt: []string{"GRANT UPDATE ON tasks TO " + reader}, undo: []string{"REVOKE UPDATE ON tasks FROM " + reader},
			want: []audit.FindingKind{audit.FindingReaderCanWrite}, subject: readerSubject, database: db, inProblem: "tasks"},
		{name: "all-tenants role not read-only", in: db,
			breakIt: []string{"ALTER ROLE " + reader + " SET default_transaction_read_only = off"},
			undo:    []string{"ALTER ROLE " + reader + " SET default_transaction_read_only = on"},
			want:    []audit.FindingKind{audit.FindingReaderNotReadOnly}, subject: readerSubject},
		{name: "a kept subtask count drifted", in: db,
			breakIt: []string{"INSERT INTO accounts (slug, name) VALUES ('tenant-9', 'drift')",
				"INSERT INTO subtask_counts SELECT id, 5 FROM accounts WHERE slug = 'tenant-9'"},
			// The repair the finding suggests must clear it.
			recount: true, undo: []string{"DELETE FROM accounts"},
			want: []audit.FindingKind{audit.FindingCountsDrifted}, subject: "table subtask_counts", database: db, inProblem: "1 account(s) (tenant-9)"},
		// Roles and grants that reach past isolation without being a
		// superuser or BYPASSRLS.
		{name: "app role has CREATEROLE", in: db,
			breakIt: []string{"ALTER ROLE " + app + " CREATEROLE"}, undo: []string{"ALTER ROLE " + app + " NOCREATEROLE"},
			want: []audit.FindingKind{audit.FindingCreateRole}, subject: appSubject},
		{name: "app role has REPLICATION", in: db,
			breakIt: []string{"ALTER ROLE " + app + " REPLICATION"}, undo: []string{"ALTER ROLE " + app + " NOREPLICATION"},
			want: []audit.FindingKind{audit.FindingReplication}, subject: appSubject},
		{name: "app role may run programs on the server", in: db,
			breakIt: []string{"GRANT pg_execute_server_program TO " + app}, undo: []string{"REVOKE pg_execute_server_program FROM " + app},
			want: []audit.FindingKind{audit.FindingPredefinedMember}, subject: appSubject, inProblem: "pg_execute_server_program"},
		{name: "app role reads all data", in: db,
			breakIt: []string{"GRANT pg_read_all_data TO " + app}, undo: []string{"REVOKE pg_read_all_data FROM " + app},
			want: []audit.FindingKind{audit.FindingPredefinedMember}, subject: appSubject, inProblem: "pg_read_all_data"},
		{name: "app role may create temporary objects", in: db,
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + pg.QuoteIdent(db) + " TO " + app}, undo: []string{"REVOKE TEMPORARY ON DATABASE " + pg.QuoteIdent(db) + " FROM " + app},
			want: []audit.FindingKind{audit.FindingCanCreateTemp}, subject: appSubject, database: db},
		{name: "everyone may create temporary objects", in: db,
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + pg.QuoteIdent(db) + " TO PUBLIC"}, undo: []string{"REVOKE TEMPORARY ON DATABASE " + pg.QuoteIdent(db) + " FROM PUBLIC"},
			// Both runtime roles; the first finding is the app's.
			want: []audit.FindingKind{audit.FindingCanCreateTemp}, subject: appSubject, database: db},
		{name: "app role may create in public", in: db,
			breakIt: []string{"GRANT CREATE ON SCHEMA public TO " + app}, undo: []string{"REVOKE CREATE ON SCHEMA public FROM " + app},
			want: []audit.FindingKind{audit.FindingCanCreate}, subject: appSubject, database: db, inProblem: "schema public"},
		{name: "TRUNCATE granted on a tenanted table", in: db,
			breakIt: []string{"GRANT TRUNCATE ON subtasks TO " + app}, undo: []string{"REVOKE TRUNCATE ON subtasks FROM " + app},
			want: []audit.FindingKind{audit.FindingExtraGrant}, subject: appSubject, database: db, inProblem: "TRUNCATE ignores row-level security"},
		{name: "TRIGGER granted on a tenanted table", in: db,
			breakIt: []string{"GRANT TRIGGER ON tasks TO " + app}, undo: []string{"REVOKE TRIGGER ON tasks FROM " + app},
			want: []audit.FindingKind{audit.FindingExtraGrant}, subject: appSubject, database: db, inProblem: "TRIGGER on tasks"},
		{name: "app role may write accounts", in: db,
			breakIt: []string{"GRANT UPDATE ON accounts TO " + app}, undo: []string{"REVOKE UPDATE ON accounts FROM " + app},
			want: []audit.FindingKind{audit.FindingExtraGrant}, subject: appSubject, database: db, inProblem: "UPDATE on accounts"},
		{name: "a view over subtasks owned by the admin", in: db,
			breakIt: []string{"CREATE VIEW every_subtask AS SELECT * FROM subtasks", "GRANT SELECT ON every_subtask TO " + app},
			undo:    []string{"DROP VIEW every_subtask"},
			want:    []audit.FindingKind{audit.FindingViewBypassesRLS}, subject: "view every_subtask", database: db},
		{name: "a view over a view over tasks", in: db,
			breakIt: []string{"CREATE VIEW inner_tasks AS SELECT * FROM tasks", "CREATE VIEW outer_tasks AS SELECT id FROM inner_tasks", "GRANT SELECT ON outer_tasks TO " + app},
			undo:    []string{"DROP VIEW outer_tasks", "DROP VIEW inner_tasks"},
			want:    []audit.FindingKind{audit.FindingViewBypassesRLS}, subject: "view outer_tasks", database: db},
		{name: "a materialized view over subtasks", in: db,
			breakIt: []string{"CREATE MATERIALIZED VIEW subtask_totals AS SELECT account_id, count(*) FROM subtasks GROUP BY account_id", "GRANT SELECT ON subtask_totals TO " + app},
			undo:    []string{"DROP MATERIALIZED VIEW subtask_totals"},
			want:    []audit.FindingKind{audit.FindingViewBypassesRLS}, subject: "materialized view subtask_totals", database: db},
		{name: "a SECURITY DEFINER function returning tenant rows", in: db,
			breakIt: []string{`CREATE FUNCTION public.every_project() RETURNS SETOF public.projects LANGUAGE sql SECURITY DEFINER
				SET search_path = pg_catalog, pg_temp AS 'SELECT * FROM public.projects'`},
			undo: []string{"DROP FUNCTION public.every_project()"},
			want: []audit.FindingKind{audit.FindingDefinerCallable}, subject: "function every_project()", database: db},
		{name: "a SECURITY DEFINER trigger without pg_temp last", in: db,
			breakIt: []string{`CREATE FUNCTION public.note_task() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
				SET search_path = pg_catalog, public AS $$ BEGIN RETURN NULL; END $$`,
				"REVOKE ALL ON FUNCTION public.note_task() FROM PUBLIC",
				"CREATE TRIGGER note_task AFTER INSERT ON tasks FOR EACH STATEMENT EXECUTE FUNCTION public.note_task()"},
			undo: []string{"DROP TRIGGER note_task ON tasks", "DROP FUNCTION public.note_task()"},
			want: []audit.FindingKind{audit.FindingDefinerSearchPath}, subject: "function note_task()", database: db, inProblem: "fires it"},
		{name: "a table reached only through a foreign key", in: db,
			breakIt: []string{"CREATE TABLE comments (id bigint PRIMARY KEY, task_account bigint, task_id bigint, body text, FOREIGN KEY (task_account, task_id) REFERENCES tasks (account_id, id))", "GRANT SELECT, INSERT ON comments TO " + app},
			undo:    []string{"DROP TABLE comments"},
			want:    []audit.FindingKind{audit.FindingNoTenantColumn, audit.FindingRLSDisabled, audit.FindingRLSNotForced, audit.FindingPolicyMissing}, subject: "table comments", database: db},
		{name: "a tenant column with another name", in: db,
			breakIt: []string{"CREATE TABLE notes (id bigint, org_id bigint REFERENCES accounts (id), body text)", "GRANT SELECT, INSERT ON notes TO " + app},
			undo:    []string{"DROP TABLE notes"},
			want:    []audit.FindingKind{audit.FindingRLSDisabled, audit.FindingRLSNotForced, audit.FindingPolicyMissing, audit.FindingPolicyAllowsForeignWrite}, subject: "table notes", database: db},
		{name: "a table that is neither tenanted nor shared", in: db,
			breakIt: []string{"CREATE TABLE settings (k text, v text)", "GRANT SELECT ON settings TO " + app},
			undo:    []string{"DROP TABLE settings"},
			want:    []audit.FindingKind{audit.FindingUntenantedTable}, subject: "table settings", database: db},
		{name: "a policy that lets a tenant read lower ids (<=)", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON subtasks USING (account_id <= (SELECT app_current_tenant()))"},
			undo:    []string{"ALTER POLICY tenant_isolation ON subtasks USING (account_id = (SELECT app_current_tenant()))"},
			want:    []audit.FindingKind{audit.FindingPolicyOpenToOtherTenant, audit.FindingPolicyNotCanonical}, subject: "table subtasks", database: db},
		{name: "a policy that lets a tenant read higher ids (>=)", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON projects USING (account_id >= (SELECT app_current_tenant()))"},
			undo:    []string{"ALTER POLICY tenant_isolation ON projects USING (account_id = (SELECT app_current_tenant()))"},
			want:    []audit.FindingKind{audit.FindingPolicyOpenToOtherTenant, audit.FindingPolicyNotCanonical}, subject: "table projects", database: db},
		{name: "an extra permissive policy for one tenant", in: db,
			breakIt: []string{"CREATE POLICY tenant_one ON tasks USING (account_id = 1)"},
			undo:    []string{"DROP POLICY tenant_one ON tasks"},
			want:    []audit.FindingKind{audit.FindingPolicyNotCanonical}, subject: "table tasks", database: db, inProblem: "tenant_one"},
		{name: "a policy that trusts session_user", in: db,
			breakIt: []string{"ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant()) OR session_user = 'operator')"},
			undo:    []string{"ALTER POLICY tenant_isolation ON users USING (account_id = (SELECT app_current_tenant()))"},
			want:    []audit.FindingKind{audit.FindingPolicyNotCanonical}, subject: "table users", database: db},
		{name: "app_current_tenant with a default", in: db,
			breakIt: []string{`CREATE OR REPLACE FUNCTION app_current_tenant() RETURNS bigint LANGUAGE sql STABLE
				AS $$ SELECT coalesce(nullif(current_setting('app.tenant_id', true), '')::bigint, 1) $$`},
			undo: []string{`CREATE OR REPLACE FUNCTION app_current_tenant() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE
				AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::bigint $$`},
			want: []audit.FindingKind{audit.FindingPolicyNotCanonical}, subject: "function public.app_current_tenant()", database: db},
		{name: `a search_path with "$user" for the app role`, in: db,
			breakIt: []string{"ALTER ROLE " + app + ` IN DATABASE ` + pg.QuoteIdent(db) + ` SET search_path = "$user", public`},
			undo:    []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " SET search_path = public"},
			want:    []audit.FindingKind{audit.FindingRoleSetting}, subject: appSubject, database: db, inProblem: "$user"},
		{name: "no search_path for the app role", in: db,
			breakIt: []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " RESET search_path"},
			undo:    []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " SET search_path = public"},
			want:    []audit.FindingKind{audit.FindingRoleSetting}, subject: appSubject, database: db, inProblem: "no search_path"},
		{name: "the app role's sessions act as another role", in: db,
			breakIt: []string{"ALTER ROLE " + app + " SET role = " + pg.QuoteLiteral(opts.ReaderUser)},
			undo:    []string{"ALTER ROLE " + app + " RESET role"},
			want:    []audit.FindingKind{audit.FindingRoleSetting}, subject: appSubject, database: db, inProblem: "role = "},
		{name: "a schema named after the app role", in: db,
			breakIt: []string{"CREATE SCHEMA " + app + " AUTHORIZATION " + pg.QuoteIdent(squatter)},
			undo:    []string{"DROP SCHEMA " + app},
			want:    []audit.FindingKind{audit.FindingForeignSchema}, subject: "schema " + app, database: db},
		{name: "a table of another role in public", in: db,
			breakIt: []string{"CREATE TABLE squat (x int)", "ALTER TABLE squat OWNER TO " + pg.QuoteIdent(squatter)},
			undo:    []string{"DROP TABLE squat"},
			want:    []audit.FindingKind{audit.FindingForeignObject}, subject: "schema public", database: db, inProblem: "table squat (owned by " + squatter + ")"},
		{name: "the database owned by another role", in: "postgres",
			breakIt: []string{"ALTER DATABASE " + pg.QuoteIdent(db) + " OWNER TO " + pg.QuoteIdent(squatter)},
			undo:    []string{"ALTER DATABASE " + pg.QuoteIdent(db) + " OWNER TO " + owner},
			want:    []audit.FindingKind{audit.FindingForeignObject}, subject: `database "` + db + `"`, database: db},
		{name: "all-tenants role may read password hashes", in: db,
			breakIt: []string{"GRANT SELECT (password) ON users TO " + reader}, undo: []string{"REVOKE SELECT (password) ON users FROM " + reader},
			// Any column of users is more than the all-tenants pages read.
			want: []audit.FindingKind{audit.FindingReaderReadsSecrets, audit.FindingExtraGrant}, subject: readerSubject, database: db},
		{name: "all-tenants role may TRUNCATE", in: db,
			breakIt: []string{"GRANT TRUNCATE ON subtasks TO " + reader}, undo: []string{"REVOKE TRUNCATE ON subtasks FROM " + reader},
			want: []audit.FindingKind{audit.FindingReaderCanWrite}, subject: readerSubject, database: db, inProblem: "TRUNCATE"},
		{name: "all-tenants role may create temporary objects", in: db,
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + pg.QuoteIdent(db) + " TO " + reader}, undo: []string{"REVOKE TEMPORARY ON DATABASE " + pg.QuoteIdent(db) + " FROM " + reader},
			want: []audit.FindingKind{audit.FindingCanCreateTemp}, subject: readerSubject, database: db},
		{name: "all-tenants role lacks BYPASSRLS", in: db,
			breakIt: []string{"ALTER ROLE " + reader + " NOBYPASSRLS"}, undo: []string{"ALTER ROLE " + reader + " BYPASSRLS"},
			want: []audit.FindingKind{audit.FindingReaderNoBypassRLS}, subject: readerSubject},
	})
}

func TestCheckMultiDB(t *testing.T) {
	t.Parallel()
	opts, admin, _ := strategytest.Deploy(t, harness(strategy.MultiDB))
	app, owner := pg.QuoteIdent(opts.AppUser), pg.QuoteIdent(opts.AdminUser)
	appSubject := `role "` + opts.AppUser + `"`
	runBreakages(t, opts, []breakage{
		{name: "tenant database dropped", in: "postgres",
			breakIt: []string{"DROP DATABASE " + pg.QuoteIdent(opts.TenantDatabase(2)) + " WITH (FORCE)"},
			undoFn: func() error {
				_, err := admin.Setup(context.Background(), nil)
				return err
			},
			want: []audit.FindingKind{audit.FindingDatabaseMissing}, subject: `database "` + opts.TenantDatabase(2) + `"`},
		{name: "migration pending in one tenant database", in: opts.TenantDatabase(1),
			breakIt: []string{"DELETE FROM goose_db_version WHERE version_id = 1"},
			undo:    []string{"INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, true)"},
			want:    []audit.FindingKind{audit.FindingMigrationsPending}, subject: "migrations", database: opts.TenantDatabase(1), inProblem: "00001_schema.sql"},
		{name: "a newer build migrated one tenant database", in: opts.TenantDatabase(2),
			breakIt: []string{"INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)"},
			undo:    []string{"DELETE FROM goose_db_version WHERE version_id = 99999"},
			want:    []audit.FindingKind{audit.FindingMigrationsAhead}, subject: "migrations", database: opts.TenantDatabase(2), inProblem: "version 99999"},
		{name: "app role owns a tenant's table", in: opts.TenantDatabase(0),
			// The owner's privileges pass to app and back to the owner.
			breakIt: []string{"ALTER TABLE projects OWNER TO " + app}, undo: []string{"ALTER TABLE projects OWNER TO " + owner},
			undoFn: func() error {
				_, err := admin.Migrate(context.Background(), nil, strategy.MigrateOptions{})
				return err
			},
			// An owner holds every privilege on its table, TRUNCATE included,
			// and the table is no longer the admin's.
			want: []audit.FindingKind{audit.FindingOwnsTable, audit.FindingExtraGrant, audit.FindingForeignObject}, subject: appSubject, database: opts.TenantDatabase(0), inProblem: "projects"},
		{name: "app role is a superuser", in: "postgres",
			breakIt: []string{"ALTER ROLE " + app + " SUPERUSER"}, undo: []string{"ALTER ROLE " + app + " NOSUPERUSER"},
			want: []audit.FindingKind{audit.FindingSuperuser}, subject: appSubject},
		{name: "a kept subtask count drifted", in: opts.TenantDatabase(1),
			breakIt: []string{"INSERT INTO accounts (slug, name) VALUES ('tenant-1', 'drift')",
				"INSERT INTO subtask_counts SELECT id, 5 FROM accounts"},
			recount: true, undo: []string{"DELETE FROM subtask_counts", "DELETE FROM accounts"},
			want: []audit.FindingKind{audit.FindingCountsDrifted}, subject: "table subtask_counts", database: opts.TenantDatabase(1), inProblem: "1 account(s) (tenant-1)"},
		{name: "app role has BYPASSRLS", in: "postgres",
			breakIt: []string{"ALTER ROLE " + app + " BYPASSRLS"}, undo: []string{"ALTER ROLE " + app + " NOBYPASSRLS"},
			want: []audit.FindingKind{audit.FindingBypassRLS}, subject: appSubject},
		// What a tenant database grants the app role, one database at a time.
		{name: "a grant revoked in one tenant database", in: opts.TenantDatabase(2),
			breakIt: []string{"REVOKE SELECT ON subtasks FROM " + app}, undo: []string{"GRANT SELECT ON subtasks TO " + app},
			want: []audit.FindingKind{audit.FindingGrantMissing}, subject: "table subtasks", database: opts.TenantDatabase(2), inProblem: "lacks SELECT"},
		{name: "TEMPORARY in one tenant database", in: opts.TenantDatabase(1),
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + pg.QuoteIdent(opts.TenantDatabase(1)) + " TO " + app},
			undo:    []string{"REVOKE TEMPORARY ON DATABASE " + pg.QuoteIdent(opts.TenantDatabase(1)) + " FROM " + app},
			want:    []audit.FindingKind{audit.FindingCanCreateTemp}, subject: appSubject, database: opts.TenantDatabase(1)},
		{name: "TRUNCATE in one tenant database", in: opts.TenantDatabase(0),
			breakIt: []string{"GRANT TRUNCATE ON users TO " + app}, undo: []string{"REVOKE TRUNCATE ON users FROM " + app},
			want: []audit.FindingKind{audit.FindingExtraGrant}, subject: appSubject, database: opts.TenantDatabase(0), inProblem: "TRUNCATE on users"},
		{name: "a SECURITY DEFINER function in one tenant database", in: opts.TenantDatabase(0),
			breakIt: []string{`CREATE FUNCTION public.escape() RETURNS void LANGUAGE sql SECURITY DEFINER AS 'SELECT'`},
			undo:    []string{"DROP FUNCTION public.escape()"},
			want:    []audit.FindingKind{audit.FindingDefinerCallable, audit.FindingDefinerSearchPath}, subject: "function escape()", database: opts.TenantDatabase(0)},
		{name: "a count trigger searching the caller's schemas first", in: opts.TenantDatabase(1),
			breakIt: []string{"ALTER FUNCTION public.subtask_counts_apply() SET search_path = pg_catalog, public"},
			undo:    []string{"ALTER FUNCTION public.subtask_counts_apply() SET search_path = pg_catalog, pg_temp"},
			want:    []audit.FindingKind{audit.FindingDefinerSearchPath}, subject: "function subtask_counts_apply()", database: opts.TenantDatabase(1)},
		{name: "a schema named after the app role in one tenant database", in: opts.TenantDatabase(2),
			breakIt: []string{"CREATE SCHEMA " + app}, undo: []string{"DROP SCHEMA " + app},
			want: []audit.FindingKind{audit.FindingForeignSchema}, subject: "schema " + app, database: opts.TenantDatabase(2)},
		// The directory says which database serves a tenant: a role that
		// may write it could send one tenant's requests to another's.
		{name: "app role may update the tenant directory", in: opts.Database,
			breakIt: []string{"GRANT UPDATE (database) ON " + directory.Table + " TO " + app},
			undo:    []string{"REVOKE UPDATE (database) ON " + directory.Table + " FROM " + app},
			want:    []audit.FindingKind{audit.FindingExtraGrant}, subject: "table " + directory.Table, database: opts.Database, inProblem: "may write the tenant directory"},
		{name: "everyone may insert into the tenant directory", in: opts.Database,
			breakIt: []string{"GRANT INSERT ON " + directory.Table + " TO PUBLIC"},
			undo:    []string{"REVOKE INSERT ON " + directory.Table + " FROM PUBLIC"},
			want:    []audit.FindingKind{audit.FindingExtraGrant}, subject: "table " + directory.Table, database: opts.Database, inProblem: "may write the tenant directory"},
		{name: "TEMPORARY in the base database", in: opts.Database,
			breakIt: []string{"GRANT TEMPORARY ON DATABASE " + pg.QuoteIdent(opts.Database) + " TO PUBLIC"},
			undo:    []string{"REVOKE TEMPORARY ON DATABASE " + pg.QuoteIdent(opts.Database) + " FROM PUBLIC"},
			want:    []audit.FindingKind{audit.FindingCanCreate}, subject: appSubject, database: opts.Database},
	})
}

// TestCheckMultiSchema breaks each property multischema's isolation rests
// on: the app role reaches no tenant's schema itself, each tenant's role
// its own only, with exactly the grants the server needs; every schema is
// there, the admin's and migrated.
func TestCheckMultiSchema(t *testing.T) {
	t.Parallel()
	opts, admin, s := strategytest.Deploy(t, harness(strategy.MultiSchema))
	first := strategytest.AddTenant(t, admin, s, "tenant-0", 3)
	middle := strategytest.AddTenant(t, admin, s, "tenant-1", 0)
	last := strategytest.AddTenant(t, admin, s, "tenant-2", 5)
	migrate := func() error {
		_, err := admin.Migrate(context.Background(), nil, strategy.MigrateOptions{})
		return err
	}
	squatter := opts.Database + "_squatter"
	strategytest.MustExec(t, pgtest.Admin(t, "postgres"), `CREATE ROLE `+pg.QuoteIdent(squatter)+` NOLOGIN`)
	app, reader, owner := pg.QuoteIdent(opts.AppUser), pg.QuoteIdent(opts.ReaderUser), pg.QuoteIdent(opts.AdminUser)
	appSubject, readerSubject := `role "`+opts.AppUser+`"`, `role "`+opts.ReaderUser+`"`
	schema := func(a models.Account) string { return pg.QuoteIdent(multischema.SchemaOf(a.ID)) }
	role := func(a models.Account) string { return multischema.RoleOf(opts, a.ID) }
	tenants := pg.QuoteIdent(multischema.TenantsRole(opts))
	db := opts.Database
	runBreakages(t, opts, []breakage{
		{name: "a tenant's schema dropped", in: db,
			breakIt: []string{"DROP SCHEMA " + schema(middle) + " CASCADE"}, undoFn: migrate,
			want: []audit.FindingKind{audit.FindingSchemaMissing}, subject: "schema " + multischema.SchemaOf(middle.ID), database: db},
		{name: "a tenant's schema owned by another role", in: db,
			breakIt: []string{"ALTER SCHEMA " + schema(first) + " OWNER TO " + pg.QuoteIdent(squatter)},
			undo:    []string{"ALTER SCHEMA " + schema(first) + " OWNER TO " + owner}, undoFn: migrate,
			want: []audit.FindingKind{audit.FindingForeignObject}, subject: "schema " + multischema.SchemaOf(first.ID), database: db, inProblem: squatter},
		{name: "migration pending in one schema", in: db,
			breakIt: []string{"DELETE FROM " + schema(last) + ".goose_db_version WHERE version_id = 1"},
			undo:    []string{"INSERT INTO " + schema(last) + ".goose_db_version (version_id, is_applied) VALUES (1, true)"},
			want:    []audit.FindingKind{audit.FindingMigrationsPending}, subject: "migrations", database: db + "." + multischema.SchemaOf(last.ID), inProblem: "00001_schema.sql"},
		{name: "no search_path for the app role", in: db,
			breakIt: []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " RESET search_path"},
			undo:    []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " SET search_path = public"},
			want:    []audit.FindingKind{audit.FindingRoleSetting}, subject: appSubject, database: db, inProblem: "no search_path"},
		{name: "the app role's search_path names a tenant's schema", in: db,
			breakIt: []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " SET search_path = " + schema(first) + ", public"},
			undo:    []string{"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(db) + " SET search_path = public"},
			want:    []audit.FindingKind{audit.FindingRoleSetting}, subject: appSubject, database: db, inProblem: multischema.SchemaOf(first.ID)},
		{name: "the app role inherits the tenants' roles", in: db,
			breakIt: []string{"ALTER ROLE " + app + " INHERIT"}, undo: []string{"ALTER ROLE " + app + " NOINHERIT"},
			// Every tenant's schema and the directory open to it, and the
			// probe reads a tenant's subtasks with no tenant taken on.
			want:    []audit.FindingKind{audit.FindingRoleInherits, audit.FindingTenantSchemaReach, audit.FindingExtraGrant, audit.FindingPolicyOpenWithoutTenant},
			subject: appSubject},
		{name: "the app role may use a tenant's schema", in: db,
			breakIt: []string{"GRANT USAGE ON SCHEMA " + schema(middle) + " TO " + app},
			undo:    []string{"REVOKE USAGE ON SCHEMA " + schema(middle) + " FROM " + app},
			want:    []audit.FindingKind{audit.FindingTenantSchemaReach}, subject: appSubject, database: db, inProblem: multischema.SchemaOf(middle.ID)},
		{name: "everyone may use a tenant's schema", in: db,
			breakIt: []string{"GRANT USAGE ON SCHEMA " + schema(first) + " TO PUBLIC", "GRANT SELECT ON " + schema(first) + ".subtasks TO PUBLIC"},
			undoFn:  migrate, // it takes away what it did not grant
			// The app role and the other tenants' roles reach it, and the
			// probes read it.
			want:    []audit.FindingKind{audit.FindingTenantSchemaReach, audit.FindingPolicyOpenWithoutTenant},
			subject: appSubject, database: db},
		{name: "a tenant's role may read another tenant's schema", in: db,
			breakIt: []string{"GRANT USAGE ON SCHEMA " + schema(last) + " TO " + pg.QuoteIdent(role(first)), "GRANT SELECT ON " + schema(last) + ".subtasks TO " + pg.QuoteIdent(role(first))},
			undoFn:  migrate,
			want:    []audit.FindingKind{audit.FindingTenantSchemaReach}, subject: `role "` + role(first) + `"`, database: db, inProblem: multischema.SchemaOf(last.ID)},
		{name: "the role of all tenants may use a tenant's schema", in: db,
			breakIt: []string{"GRANT USAGE ON SCHEMA " + schema(middle) + " TO " + tenants},
			undo:    []string{"REVOKE USAGE ON SCHEMA " + schema(middle) + " FROM " + tenants},
			want:    []audit.FindingKind{audit.FindingTenantSchemaReach}, subject: `role "` + role(first) + `"`, database: db, inProblem: multischema.SchemaOf(middle.ID)},
		{name: "a grant revoked in one schema", in: db,
			breakIt: []string{"REVOKE SELECT ON " + schema(last) + ".subtasks FROM " + pg.QuoteIdent(role(last))},
			undoFn:  migrate,
			want:    []audit.FindingKind{audit.FindingGrantMissing}, subject: "table subtasks", database: db + "." + multischema.SchemaOf(last.ID), inProblem: "lacks SELECT"},
		{name: "TRUNCATE granted in one schema", in: db,
			breakIt: []string{"GRANT TRUNCATE ON " + schema(first) + ".users TO " + pg.QuoteIdent(role(first))},
			undoFn:  migrate,
			want:    []audit.FindingKind{audit.FindingExtraGrant}, subject: `role "` + role(first) + `"`, database: db + "." + multischema.SchemaOf(first.ID), inProblem: "TRUNCATE on users"},
		{name: "the tenants may read the totals", in: db,
			breakIt: []string{"GRANT SELECT ON public.tenant_totals TO " + tenants},
			undo:    []string{"REVOKE SELECT ON public.tenant_totals FROM " + tenants},
			want:    []audit.FindingKind{audit.FindingExtraGrant}, subject: `role "` + role(first) + `"`, database: db, inProblem: "tenant_totals"},
		{name: "a tenant's role has CREATEROLE", in: db,
			breakIt: []string{"ALTER ROLE " + pg.QuoteIdent(role(middle)) + " CREATEROLE"},
			undo:    []string{"ALTER ROLE " + pg.QuoteIdent(role(middle)) + " NOCREATEROLE"},
			// The app role, a member, could SET ROLE to it and create roles.
			want: []audit.FindingKind{audit.FindingCreateRole, audit.FindingPrivilegedMember}, subject: `role "` + role(middle) + `"`},
		{name: "the app role is no longer a tenant's member", in: db,
			breakIt: []string{"REVOKE " + pg.QuoteIdent(role(last)) + " FROM " + app},
			undoFn:  migrate,
			want:    []audit.FindingKind{audit.FindingGrantMissing}, subject: `role "` + role(last) + `"`, database: db},
		{name: "the app role is a superuser", in: db,
			breakIt: []string{"ALTER ROLE " + app + " SUPERUSER"}, undo: []string{"ALTER ROLE " + app + " NOSUPERUSER"},
			want: []audit.FindingKind{audit.FindingSuperuser, audit.FindingPolicyOpenWithoutTenant}, subject: appSubject},
		{name: "the all-tenants role may write a tenant's subtasks", in: db,
			breakIt: []string{"GRANT UPDATE ON " + schema(middle) + ".subtasks TO " + reader},
			undoFn:  migrate,
			want:    []audit.FindingKind{audit.FindingReaderCanWrite}, subject: readerSubject, database: db + "." + multischema.SchemaOf(middle.ID), inProblem: "UPDATE on subtasks"},
		{name: "the all-tenants role may read password hashes", in: db,
			breakIt: []string{"GRANT SELECT ON " + schema(first) + ".users TO " + reader},
			undo:    []string{"REVOKE SELECT ON " + schema(first) + ".users FROM " + reader},
			want:    []audit.FindingKind{audit.FindingExtraGrant}, subject: readerSubject, database: db + "." + multischema.SchemaOf(first.ID), inProblem: "users"},
		{name: "a kept subtask count drifted in one schema", in: db,
			breakIt: []string{"UPDATE " + schema(last) + ".subtask_counts SET subtasks = subtasks + 4"},
			recount: true,
			want:    []audit.FindingKind{audit.FindingCountsDrifted}, subject: "table " + multischema.SchemaOf(last.ID) + ".subtask_counts", database: db + "." + multischema.SchemaOf(last.ID), inProblem: "tenant-2"},
		{name: "a schema that looks like a tenant's, without an account", in: db,
			breakIt: []string{"CREATE SCHEMA tenant_999"}, undo: []string{"DROP SCHEMA tenant_999"},
			want: []audit.FindingKind{audit.FindingForeignSchema}, subject: "schema tenant_999", database: db},
	})
}

// TestCheckBeforeSetup: nothing exists yet, which Check reports as
// findings saying to run setup, not as an error.
func TestCheckBeforeSetup(t *testing.T) {
	t.Parallel()
	for _, name := range strategies.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := strategytest.Options(t, name)
			rep := mustCheck(t, opts)
			kinds := findingKinds(rep.Findings)
			want := []audit.FindingKind{audit.FindingDatabaseMissing, audit.FindingRoleMissing}
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
	// Two tenants, as in singleschema's tests: tenant-0 with 3 subtasks
	// and tenant-1 with 5.
	opts, admin, s := strategytest.Deploy(t, harness(strategy.SingleSchema))
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 3)
	strategytest.AddTenant(t, admin, s, "tenant-1", 5)
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
