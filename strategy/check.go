package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/pressly/goose/v3"
)

// FindingKind names a kind of problem Check finds in a deployment.
type FindingKind string

// The kinds of finding. Those about roles, row-level security and policies
// are also checked by the singleschema server at start (see Open).
const (
	// FindingDatabaseMissing: a database of the deployment does not exist.
	FindingDatabaseMissing FindingKind = "database-missing"
	// FindingRoleMissing: the app or all-tenants role does not exist.
	FindingRoleMissing FindingKind = "role-missing"
	// FindingMigrationsPending: a database lacks some of the migrations.
	FindingMigrationsPending FindingKind = "migrations-pending"
	// FindingTableMissing: a singleschema tenanted table does not exist.
	FindingTableMissing FindingKind = "table-missing"
	// FindingGrantMissing: the app role lacks a privilege the server
	// needs on a tenanted table (its queries would fail, closed).
	FindingGrantMissing FindingKind = "grant-missing"

	// FindingSuperuser: a runtime role is a superuser.
	FindingSuperuser FindingKind = "role-superuser"
	// FindingBypassRLS: the app role has BYPASSRLS.
	FindingBypassRLS FindingKind = "role-bypassrls"
	// FindingCreateRole: a runtime role has CREATEROLE (it could grant
	// itself the all-tenants reader).
	FindingCreateRole FindingKind = "role-createrole"
	// FindingReplication: a runtime role has REPLICATION (it could stream
	// every tenant's rows from the write-ahead log).
	FindingReplication FindingKind = "role-replication"
	// FindingPrivilegedMember: the app role is a member of a superuser or
	// BYPASSRLS role, and could SET ROLE to it.
	FindingPrivilegedMember FindingKind = "role-member-of-privileged"
	// FindingPredefinedMember: a runtime role is a member of a predefined
	// role that reads or writes all data, server files or programs, or
	// signals other sessions (pg_read_all_data, pg_execute_server_program,
	// ...).
	FindingPredefinedMember FindingKind = "role-member-of-predefined"
	// FindingOwnsTable: a runtime role owns, or is a member of the owner
	// of, the database, a schema, a table or a function.
	FindingOwnsTable FindingKind = "role-owns-objects"
	// FindingCanCreateTemp: a runtime role may create temporary objects,
	// which come first on a search_path that does not name pg_temp.
	FindingCanCreateTemp FindingKind = "role-can-create-temp"
	// FindingCanCreate: a runtime role may create schemas or objects.
	FindingCanCreate FindingKind = "role-can-create"
	// FindingRoleSetting: a runtime role's session defaults differ from
	// setup's in a way that changes what its queries reach (a search_path
	// with "$user" or another schema, a role setting).
	FindingRoleSetting FindingKind = "role-setting"
	// FindingReaderNoBypassRLS: the all-tenants role would see no rows.
	FindingReaderNoBypassRLS FindingKind = "reader-lacks-bypassrls"
	// FindingReaderCanWrite: the all-tenants role, which sees every
	// tenant, may write.
	FindingReaderCanWrite FindingKind = "reader-can-write"
	// FindingReaderNotReadOnly: the all-tenants role's transactions are
	// not read-only by default.
	FindingReaderNotReadOnly FindingKind = "reader-not-read-only"
	// FindingReaderReadsSecrets: the all-tenants role may read users'
	// password hashes.
	FindingReaderReadsSecrets FindingKind = "reader-reads-passwords"
	// FindingExtraGrant: a runtime role holds a privilege the server does
	// not need on a table (TRUNCATE, which ignores row-level security;
	// TRIGGER; writes to what only the admin or the triggers write).
	FindingExtraGrant FindingKind = "grant-extra"
	// FindingDefinerCallable: a runtime role may call a SECURITY DEFINER
	// function, which runs with its owner's rights.
	FindingDefinerCallable FindingKind = "definer-callable"
	// FindingDefinerSearchPath: a SECURITY DEFINER function a runtime role
	// can call or fire does not end its search_path with pg_temp, so the
	// caller's temporary objects can stand in for what it names.
	FindingDefinerSearchPath FindingKind = "definer-search-path"
	// FindingViewBypassesRLS: the app role may read a view or materialized
	// view that shows tenanted rows past row-level security.
	FindingViewBypassesRLS FindingKind = "view-bypasses-rls"
	// FindingUntenantedTable: the app role may use a table that is neither
	// tenant data nor declared shared.
	FindingUntenantedTable FindingKind = "table-not-tenanted"
	// FindingNoTenantColumn: a table holds tenants' rows (through a
	// foreign key) but has no tenant column for a policy to compare.
	FindingNoTenantColumn FindingKind = "table-without-tenant-column"
	// FindingPolicyNotCanonical: a policy that applies to the app role is
	// not the tenant policy, or app_current_tenant() is not what the
	// policies trust it to be.
	FindingPolicyNotCanonical FindingKind = "policy-not-canonical"
	// FindingForeignSchema: a schema the strategy does not use.
	FindingForeignSchema FindingKind = "foreign-schema"
	// FindingForeignObject: an object in the strategy's schema, or a
	// project database, that belongs to another role than the admin (or
	// the counts owner).
	FindingForeignObject FindingKind = "foreign-object"

	// FindingDefaultTenant: app.tenant_id has a default for the app role, so
	// a transaction that forgets to set the tenant acts as that tenant.
	FindingDefaultTenant FindingKind = "default-tenant-setting"
	// FindingRLSDisabled: a tenanted table does not have row-level security
	// enabled.
	FindingRLSDisabled FindingKind = "rls-disabled"
	// FindingRLSNotForced: a tenanted table's owner bypasses its policies.
	FindingRLSNotForced FindingKind = "rls-not-forced"
	// FindingPolicyMissing: no policy on a tenanted table applies to the
	// app role (row-level security then fails closed: it sees nothing).
	FindingPolicyMissing FindingKind = "policy-missing"
	// FindingPolicyOpenWithoutTenant: with no tenant set, the app role
	// reached rows (the probe read, updated or deleted them).
	FindingPolicyOpenWithoutTenant FindingKind = "policy-open-without-tenant"
	// FindingPolicyOpenToOtherTenant: with one tenant set, the app role
	// reached another tenant's rows.
	FindingPolicyOpenToOtherTenant FindingKind = "policy-open-to-other-tenant"
	// FindingPolicyAllowsForeignWrite: a policy's WITH CHECK let the app
	// role insert a row for, or move a row to, another tenant.
	FindingPolicyAllowsForeignWrite FindingKind = "policy-allows-cross-tenant-write"
	// FindingCountsDrifted: subtask_counts disagrees with the subtasks
	// (triggers disabled, a restore without them, a write around them), so
	// list pages show wrong totals and the all-tenants view skips or repeats
	// rows.
	FindingCountsDrifted FindingKind = "subtask-counts-drifted"
)

// BreaksIsolation reports whether a finding of kind k can let one tenant's
// work read or change another tenant's rows, or let a role past the
// policies. The other kinds stop the deployment from working but fail
// closed.
func (k FindingKind) BreaksIsolation() bool {
	switch k {
	case FindingDatabaseMissing, FindingRoleMissing, FindingMigrationsPending, FindingTableMissing,
		FindingGrantMissing, FindingReaderNoBypassRLS, FindingPolicyMissing, FindingCountsDrifted:
		return false
	}
	return true
}

// aboutRole reports whether a finding of kind k is about what a runtime
// role is or holds (its attributes, memberships, ownership, privileges
// and settings) rather than about the database's tables and policies.
func (k FindingKind) aboutRole() bool {
	switch k {
	case FindingSuperuser, FindingBypassRLS, FindingCreateRole, FindingReplication, FindingPrivilegedMember,
		FindingPredefinedMember, FindingOwnsTable, FindingCanCreateTemp, FindingCanCreate, FindingRoleSetting,
		FindingReaderNoBypassRLS, FindingReaderCanWrite, FindingReaderNotReadOnly, FindingReaderReadsSecrets, FindingExtraGrant:
		return true
	}
	return false
}

// Finding is one problem Check found.
type Finding struct {
	Kind FindingKind
	// Database is where it was found; empty for what belongs to the whole
	// server (a role's attributes).
	Database string
	// Subject is what it is about, e.g. `role "tenancy_app"`, `table
	// subtasks`.
	Subject string
	// Problem says what is wrong and why it matters.
	Problem string
	// Fix says what to do about it.
	Fix string
}

func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Subject)
	if f.Database != "" {
		fmt.Fprintf(&b, " in database %q", f.Database)
	}
	fmt.Fprintf(&b, ": %s", f.Problem)
	if f.Fix != "" {
		fmt.Fprintf(&b, "; %s", f.Fix)
	}
	return b.String()
}

// CheckReport is what Check found, and what it looked at.
type CheckReport struct {
	Strategy string
	Findings []Finding
	// Checked says, one line each, what was inspected, for a summary when
	// there are no findings.
	Checked []string
}

// IsolationFindings counts the findings that break tenant isolation.
func (r CheckReport) IsolationFindings() int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind.BreaksIsolation() {
			n++
		}
	}
	return n
}

func (r *CheckReport) add(fs ...Finding) { r.Findings = append(r.Findings, fs...) }

func (r *CheckReport) checked(format string, args ...any) {
	r.Checked = append(r.Checked, fmt.Sprintf(format, args...))
}

// Check inspects the deployment described by opts as the admin role
// (PGUSER) and returns its findings: runtime roles that could get past
// row-level security, tenanted tables without it, policies that let rows
// through, pending migrations, missing databases and roles.
//
// In singleschema it probes the policies for real: in one transaction that
// is always rolled back, it plants a canary tenant (an account and one row
// in each tenanted table), takes on the app role with SET LOCAL ROLE, and
// tries to read, update and delete rows with no tenant set and with
// another tenant set, and to insert a row for, or move a row to, another
// tenant. Nothing it does is committed; only the account id it drew from
// the sequence is used up. That needs a superuser admin, which singleschema
// requires anyway.
//
// An error means the check could not run (e.g. PostgreSQL is unreachable);
// what is wrong with the deployment is reported as findings.
func Check(ctx context.Context, opts Options) (CheckReport, error) {
	if err := opts.validate(); err != nil {
		return CheckReport{}, fmt.Errorf("invalid options: %w", err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if opts.Strategy == SingleSchema {
		return checkSingleSchema(ctx, opts)
	}
	return checkMultiDB(ctx, opts)
}

func checkSingleSchema(ctx context.Context, opts Options) (CheckReport, error) {
	rep := CheckReport{Strategy: SingleSchema}
	var dbs, roles map[string]bool
	err := withMaintenance(ctx, opts, func(m *sql.DB) error {
		if err := checkAdminRole(ctx, m); err != nil {
			return err
		}
		var err error
		dbs, roles, err = existing(ctx, m, []string{opts.Database}, []string{opts.AppUser, opts.ReaderUser})
		return err
	})
	if err != nil {
		return rep, err
	}
	for _, r := range []string{opts.AppUser, opts.ReaderUser} {
		if !roles[r] {
			rep.add(roleMissing(r))
		}
	}
	if !dbs[opts.Database] {
		rep.add(databaseMissing(opts.Database))
		return rep, nil
	}
	pool, err := openPool(opts.adminDSN(opts.Database), 2, 2)
	if err != nil {
		return rep, err
	}
	defer pool.Close()

	if err := checkDatabaseOwner(ctx, pool, opts.Database, &rep); err != nil {
		return rep, err
	}
	if roles[opts.AppUser] {
		f, err := readRoleFacts(ctx, pool, opts.AppUser)
		if err != nil {
			return rep, fmt.Errorf("read role %q: %w", opts.AppUser, err)
		}
		rep.add(roleAttributeFindings(f, false)...)
		fs, err := auditDatabase(ctx, pool, auditTarget{database: opts.Database, role: opts.AppUser, admin: opts.AdminUser, counter: opts.CountsOwner(), schemas: []string{"public"}})
		if err != nil {
			return rep, err
		}
		rep.add(fs...)
		rep.checked("role %s (app): not a superuser, no BYPASSRLS, CREATEROLE or REPLICATION, no membership of a role with them or of a predefined role that reaches all data, files or programs; owns nothing, creates nothing (TEMPORARY included), calls no SECURITY DEFINER function, search_path public", opts.AppUser)
		rep.checked("%s: only the schema public, every object in it the admin's or the counts owner's; every SECURITY DEFINER function the roles reach ends its search_path with pg_temp", opts.Database)
	}
	if roles[opts.ReaderUser] {
		f, err := readRoleFacts(ctx, pool, opts.ReaderUser)
		if err != nil {
			return rep, fmt.Errorf("read role %q: %w", opts.ReaderUser, err)
		}
		rep.add(readerRoleFindings(f)...)
		fs, err := auditReader(ctx, pool, opts.Database, opts.ReaderUser, opts)
		if err != nil {
			return rep, err
		}
		rep.add(fs...)
		rep.checked("role %s (all tenants): BYPASSRLS, read-only by default, SELECT on what the all-tenants pages read and nothing else (no password hashes), owns nothing, creates nothing", opts.ReaderUser)
	}
	if err := checkMigrations(ctx, pool, opts.Database, SingleSchema, &rep); err != nil {
		return rep, err
	}
	if err := checkCounts(ctx, pool, opts.Database, SingleSchema, &rep); err != nil {
		return rep, err
	}
	if roles[opts.AppUser] {
		fs, checked, err := inspectPolicies(ctx, pool, opts.Database, opts.AppUser, true)
		if err != nil {
			return rep, err
		}
		rep.add(fs...)
		rep.Checked = append(rep.Checked, checked...)
	}
	return rep, nil
}

// checkDatabaseOwner adds a finding when database is not the admin's:
// setup adopts only databases it created, and the owner of a database can
// change anything in it.
func checkDatabaseOwner(ctx context.Context, db querier, database string, rep *CheckReport) error {
	var owner string
	var mine bool
	err := db.QueryRowContext(ctx, `SELECT pg_get_userbyid(datdba), datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)
		FROM pg_database WHERE datname = current_database()`).Scan(&owner, &mine)
	if err != nil {
		return fmt.Errorf("read the owner of %s: %w", database, classify(err))
	}
	if !mine {
		rep.add(Finding{Kind: FindingForeignObject, Database: database, Subject: fmt.Sprintf("database %q", database),
			Problem: fmt.Sprintf("it is owned by %q, not by the admin role: its owner can change anything in it, and setup did not create it", owner),
			Fix:     fmt.Sprintf("run ALTER DATABASE %s OWNER TO <PGUSER> after checking what it holds, or recreate it with `tenancy setup`", quoteIdent(database))})
	}
	return nil
}

func checkMultiDB(ctx context.Context, opts Options) (CheckReport, error) {
	rep := CheckReport{Strategy: MultiDB}
	names := []string{opts.Database}
	for i := range opts.TenantCount {
		names = append(names, opts.TenantDatabase(i))
	}
	var dbs, roles map[string]bool
	err := withMaintenance(ctx, opts, func(m *sql.DB) error {
		var err error
		if dbs, roles, err = existing(ctx, m, names, []string{opts.AppUser}); err != nil || !roles[opts.AppUser] {
			return err
		}
		f, err := readRoleFacts(ctx, m, opts.AppUser)
		if err != nil {
			return fmt.Errorf("read role %q: %w", opts.AppUser, err)
		}
		rep.add(roleAttributeFindings(f, false)...)
		rep.checked("role %s (app): not a superuser, no BYPASSRLS, CREATEROLE or REPLICATION, no membership of a role with them or of a predefined role that reaches all data, files or programs", opts.AppUser)
		return nil
	})
	if err != nil {
		return rep, err
	}
	appExists := roles[opts.AppUser]
	if !appExists {
		rep.add(roleMissing(opts.AppUser))
	}
	var present []string
	for _, n := range names {
		if dbs[n] {
			present = append(present, n)
		} else {
			rep.add(databaseMissing(n))
		}
	}

	// Each tenant database on its own: its migrations, and what the app
	// role may reach in it. A few at a time, like setup.
	type result struct {
		rep CheckReport
		err error
	}
	results := make([]result, len(present))
	forEachIndex(len(present), setupWorkers, func(i int) {
		results[i].err = checkTenantDatabase(ctx, opts, present[i], present[i] == opts.Database, appExists, &results[i].rep)
	})
	var errs []error
	for i, r := range results {
		rep.add(r.rep.Findings...)
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", present[i], r.err))
		}
	}
	if tenants := opts.TenantCount; len(errs) == 0 {
		rep.checked("%d tenant databases (%s to %s): present, the admin's, migrated, counts kept; %s holds exactly the grants it needs in each, owns nothing, creates nothing (TEMPORARY included), calls no SECURITY DEFINER function, search_path public; only the schema public, every object in it the admin's or the counts owner's",
			tenants, opts.TenantDatabase(0), opts.TenantDatabase(tenants-1), opts.AppUser)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("could not check %d of %d databases: %w", len(errs), len(present), errors.Join(errs...))
	}
	return rep, nil
}

// checkTenantDatabase checks one multidb database; base is the PGDATABASE
// database, which holds no tables.
func checkTenantDatabase(ctx context.Context, opts Options, database string, base, appExists bool, rep *CheckReport) error {
	pool, err := openPool(opts.adminDSN(database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := checkDatabaseOwner(ctx, pool, database, rep); err != nil {
		return err
	}
	if base {
		if appExists {
			fs, err := auditBaseDatabase(ctx, pool, database, opts.AppUser)
			if err != nil {
				return err
			}
			rep.add(fs...)
		}
		return nil
	}
	if appExists {
		fs, err := auditTenantDatabase(ctx, pool, database, opts.AppUser, opts)
		if err != nil {
			return err
		}
		rep.add(fs...)
	}
	if err := checkMigrations(ctx, pool, database, MultiDB, rep); err != nil {
		return err
	}
	return checkCounts(ctx, pool, database, MultiDB, rep)
}

// auditTenantDatabase is what the app role may reach in one multidb
// tenant database beyond what the server needs: auditDatabase's findings
// and the grants, which must be exactly the server's (a missing one makes
// the tenant fail, an extra one reaches past it). role empty means the
// connected role.
func auditTenantDatabase(ctx context.Context, q querier, database, role string, opts Options) ([]Finding, error) {
	fs, err := auditDatabase(ctx, q, auditTarget{database: database, role: role, admin: opts.AdminUser, counter: opts.CountsOwner(), schemas: []string{"public"}})
	if err != nil {
		return nil, err
	}
	privs, err := tablePrivileges(ctx, q, role)
	if err != nil {
		return nil, err
	}
	if role == "" {
		role = opts.AppUser
	}
	return append(fs, grantFindings(database, role, false, privs, nil)...), nil
}

// auditBaseDatabase checks the multidb base database, which the server
// connects to for health checks only: the app role may not create or own
// anything there.
func auditBaseDatabase(ctx context.Context, q querier, database, role string) ([]Finding, error) {
	var temp, create, owns bool
	err := q.QueryRowContext(ctx, `
		SELECT has_database_privilege(r.oid, current_database(), 'TEMPORARY'),
		       has_database_privilege(r.oid, current_database(), 'CREATE')
		         OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
		                      AND has_schema_privilege(r.oid, n.oid, 'CREATE')),
		       pg_has_role(r.oid, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER')
		FROM pg_roles r WHERE r.rolname = $1 AND NOT r.rolsuper`, role).Scan(&temp, &create, &owns)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // a superuser may do all of it; roleAttributeFindings says so
	}
	if err != nil {
		return nil, fmt.Errorf("read the privileges of role %q: %w", role, classify(err))
	}
	if !temp && !create && !owns {
		return nil, nil
	}
	return []Finding{{Kind: FindingCanCreate, Database: database, Subject: fmt.Sprintf("role %q", role),
		Problem: "it may create (temporary) objects in the base database, or owns it, which holds no tenant data and needs none",
		Fix:     fmt.Sprintf("run REVOKE ALL ON DATABASE %[1]s FROM PUBLIC; GRANT CONNECT ON DATABASE %[1]s TO %[2]s (`tenancy setup` does)", quoteIdent(database), quoteIdent(role))}}, nil
}

// driftedCounts lists (up to five of) the accounts whose kept subtask
// count differs from their subtasks, and how many there are.
var driftedCounts = map[string]string{
	SingleSchema: `
		SELECT count(*), coalesce(string_agg(slug, ', ' ORDER BY id) FILTER (WHERE n <= 5), '')
		FROM (SELECT a.id, a.slug, row_number() OVER (ORDER BY a.id) AS n
		      FROM accounts a
		      LEFT JOIN subtask_counts c ON c.account_id = a.id
		      LEFT JOIN (SELECT account_id, count(*) AS subtasks FROM subtasks GROUP BY account_id) s ON s.account_id = a.id
		      WHERE coalesce(c.subtasks, 0) <> coalesce(s.subtasks, 0)) d`,
	MultiDB: `
		SELECT count(*), coalesce(string_agg(a.slug, ', '), '')
		FROM accounts a LEFT JOIN subtask_counts c ON c.account_id = a.id
		WHERE coalesce(c.subtasks, 0) <> (SELECT count(*) FROM subtasks)`,
}

// recount is the repair a drifted-counts finding suggests.
var recount = map[string]string{
	SingleSchema: "BEGIN; LOCK TABLE subtasks IN SHARE MODE; DELETE FROM subtask_counts; " +
		"INSERT INTO subtask_counts SELECT account_id, count(*) FROM subtasks GROUP BY account_id; COMMIT;",
	MultiDB: "BEGIN; LOCK TABLE subtasks IN SHARE MODE; DELETE FROM subtask_counts; " +
		"INSERT INTO subtask_counts SELECT id, (SELECT count(*) FROM subtasks) FROM accounts; COMMIT;",
}

// checkCounts compares the trigger-kept subtask counts with the subtasks,
// once the migration that adds them has run.
func checkCounts(ctx context.Context, db *sql.DB, database, strategyName string, rep *CheckReport) error {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('public.subtask_counts') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return err
	}
	var n int
	var some string
	if err := db.QueryRowContext(ctx, driftedCounts[strategyName]).Scan(&n, &some); err != nil {
		return fmt.Errorf("compare the subtask counts in %s: %w", database, classify(err))
	}
	if n > 0 {
		rep.add(Finding{Kind: FindingCountsDrifted, Database: database, Subject: "table subtask_counts",
			Problem: fmt.Sprintf("the kept subtask counts of %d account(s) (%s) differ from their subtasks, so list totals are wrong and the all-tenants view skips or repeats rows", n, some),
			Fix:     "recount them as the admin (psql): " + recount[strategyName]})
		return nil
	}
	rep.checked("%s: subtask counts agree with the subtasks", database)
	return nil
}

// existing returns which of databases and roles exist.
func existing(ctx context.Context, m *sql.DB, databases, roles []string) (map[string]bool, map[string]bool, error) {
	read := func(query string, names []string) (map[string]bool, error) {
		rows, err := m.QueryContext(ctx, query, names)
		if err != nil {
			return nil, classify(err)
		}
		defer rows.Close()
		found := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return nil, err
			}
			found[n] = true
		}
		return found, rows.Err()
	}
	dbs, err := read(`SELECT datname FROM pg_database WHERE datname = ANY($1)`, databases)
	if err != nil {
		return nil, nil, fmt.Errorf("list databases: %w", err)
	}
	rs, err := read(`SELECT rolname FROM pg_roles WHERE rolname = ANY($1)`, roles)
	if err != nil {
		return nil, nil, fmt.Errorf("list roles: %w", err)
	}
	return dbs, rs, nil
}

func roleMissing(role string) Finding {
	return Finding{Kind: FindingRoleMissing, Subject: fmt.Sprintf("role %q", role),
		Problem: "it does not exist", Fix: "run `tenancy setup`"}
}

func databaseMissing(database string) Finding {
	return Finding{Kind: FindingDatabaseMissing, Subject: fmt.Sprintf("database %q", database),
		Problem: "it does not exist", Fix: "run `tenancy setup`, which creates it and runs its migrations"}
}

// checkMigrations adds a finding when db lacks migrations of strategyName.
func checkMigrations(ctx context.Context, db *sql.DB, database, strategyName string, rep *CheckReport) error {
	version, pending, err := pendingMigrations(ctx, db, strategyName)
	if err != nil {
		return fmt.Errorf("%s: read migrations: %w", database, classify(err))
	}
	if len(pending) > 0 {
		rep.add(Finding{Kind: FindingMigrationsPending, Database: database, Subject: "migrations",
			Problem: fmt.Sprintf("%s not applied (at version %d)", strings.Join(pending, ", "), version),
			Fix:     "run `tenancy migrate`"})
	} else if strategyName == SingleSchema {
		rep.checked("%s: migrations up to date (version %d)", database, version)
	}
	return nil
}

// pendingMigrations returns db's schema version and the files of the
// migrations of strategyName not applied to it. Unlike goose's Status it
// does not create goose's version table when that is missing (a check
// writes nothing): a database without one has every migration pending.
func pendingMigrations(ctx context.Context, db *sql.DB, strategyName string) (version int64, pending []string, err error) {
	fsys, err := Migrations(strategyName)
	if err != nil {
		return 0, nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return 0, nil, fmt.Errorf("load migrations: %w", err)
	}
	var tracked bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, goose.DefaultTablename).Scan(&tracked); err != nil {
		return 0, nil, err
	}
	if !tracked {
		for _, s := range p.ListSources() {
			pending = append(pending, path.Base(s.Path))
		}
		return 0, pending, nil
	}
	status, err := p.Status(ctx)
	if err != nil {
		return 0, nil, err
	}
	for _, s := range status {
		switch {
		case s.State == goose.StatePending:
			pending = append(pending, path.Base(s.Source.Path))
		case s.Source.Version > version:
			version = s.Source.Version
		}
	}
	return version, pending, nil
}
