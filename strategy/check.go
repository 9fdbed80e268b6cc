package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
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
	// FindingPrivilegedMember: the app role is a member of a superuser or
	// BYPASSRLS role, and could SET ROLE to it.
	FindingPrivilegedMember FindingKind = "role-member-of-privileged"
	// FindingOwnsTable: a runtime role owns, or is a member of the owner
	// of, a table.
	FindingOwnsTable FindingKind = "role-owns-table"
	// FindingReaderNoBypassRLS: the all-tenants role would see no rows.
	FindingReaderNoBypassRLS FindingKind = "reader-lacks-bypassrls"
	// FindingReaderCanWrite: the all-tenants role, which sees every
	// tenant, may write.
	FindingReaderCanWrite FindingKind = "reader-can-write"
	// FindingReaderNotReadOnly: the all-tenants role's transactions are
	// not read-only by default.
	FindingReaderNotReadOnly FindingKind = "reader-not-read-only"

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
)

// BreaksIsolation reports whether a finding of kind k can let one tenant's
// work read or change another tenant's rows, or let a role past the
// policies. The other kinds stop the deployment from working but fail
// closed.
func (k FindingKind) BreaksIsolation() bool {
	switch k {
	case FindingDatabaseMissing, FindingRoleMissing, FindingMigrationsPending, FindingTableMissing,
		FindingGrantMissing, FindingReaderNoBypassRLS, FindingPolicyMissing:
		return false
	}
	return true
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

	if roles[opts.AppUser] {
		f, err := readRoleFacts(ctx, pool, opts.AppUser)
		if err != nil {
			return rep, fmt.Errorf("read role %q: %w", opts.AppUser, err)
		}
		rep.add(roleAttributeFindings(f)...)
		rep.add(ownershipFindings(f, opts.Database)...)
		rep.checked("role %s (app): not a superuser, no BYPASSRLS, not a member of a role with either, owns no table", opts.AppUser)
	}
	if roles[opts.ReaderUser] {
		f, err := readRoleFacts(ctx, pool, opts.ReaderUser)
		if err != nil {
			return rep, fmt.Errorf("read role %q: %w", opts.ReaderUser, err)
		}
		rep.add(readerRoleFindings(f, opts.Database)...)
		rep.checked("role %s (all tenants): BYPASSRLS, read-only by default, no write grants, owns no table", opts.ReaderUser)
	}
	if err := checkMigrations(ctx, pool, opts.Database, SingleSchema, &rep); err != nil {
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
		rep.add(roleAttributeFindings(f)...)
		rep.checked("role %s (app): not a superuser, no BYPASSRLS, not a member of a role with either", opts.AppUser)
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

	// Each tenant database on its own: its migrations, and whether the app
	// role owns any of its tables. A few at a time, like setup.
	type result struct {
		rep CheckReport
		err error
	}
	results := make([]result, len(present))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(setupWorkers, len(present)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i].err = checkTenantDatabase(ctx, opts, present[i], present[i] == opts.Database, appExists, &results[i].rep)
			}
		}()
	}
	for i := range present {
		work <- i
	}
	close(work)
	wg.Wait()
	var errs []error
	for i, r := range results {
		rep.add(r.rep.Findings...)
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", present[i], r.err))
		}
	}
	if tenants := opts.TenantCount; len(errs) == 0 {
		rep.checked("%d tenant databases (%s to %s): present, migrated, no table owned by %s",
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
	if appExists {
		f, err := readRoleFacts(ctx, pool, opts.AppUser)
		if err != nil {
			return fmt.Errorf("read role %q: %w", opts.AppUser, err)
		}
		rep.add(ownershipFindings(f, database)...)
	}
	if base {
		return nil
	}
	return checkMigrations(ctx, pool, database, MultiDB, rep)
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

// tenantedTable is a singleschema table that holds tenants' rows, with
// what the inspected role may do to it.
type tenantedTable struct {
	name   string
	column string // names each row's tenant: id for accounts, else account_id
	rls    bool   // ENABLE ROW LEVEL SECURITY
	forced bool   // FORCE ROW LEVEL SECURITY
	// policy: some permissive policy applies to the role.
	policy             bool
	sel, ins, upd, del bool // the role's privileges
}

// lacks lists the privileges the app role needs on t and does not have:
// SELECT on accounts (tenants are created by the admin), SELECT, INSERT,
// UPDATE and DELETE on the other tables the migrations create (as grants
// gives). A table it does not know may be none of the server's business.
func (t tenantedTable) lacks() []string {
	if !slices.Contains(singleSchemaTables(), t.name) {
		return nil
	}
	var out []string
	for _, p := range []struct {
		name string
		has  bool
	}{{"SELECT", t.sel}, {"INSERT", t.ins}, {"UPDATE", t.upd}, {"DELETE", t.del}} {
		if !p.has && (p.name == "SELECT" || t.name != "accounts") {
			out = append(out, p.name)
		}
	}
	return out
}

// singleSchemaTables are the tenanted tables the singleschema migrations
// create, parents first.
func singleSchemaTables() []string {
	return []string{"accounts", "users", "projects", "tasks", "subtasks"}
}

// readTenantedTables finds the tenanted tables: accounts, and every public
// table with an account_id column, so that a table a later migration adds
// without row-level security is found too. role is the role whose
// privileges and policies count; empty means the connected role.
func readTenantedTables(ctx context.Context, q querier, role string) ([]tenantedTable, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT c.relname, CASE WHEN c.relname = 'accounts' THEN 'id' ELSE 'account_id' END,
		       c.relrowsecurity, c.relforcerowsecurity,
		       EXISTS (SELECT 1 FROM pg_policy p
		               WHERE p.polrelid = c.oid AND p.polpermissive
		                 AND EXISTS (SELECT 1 FROM unnest(p.polroles) pr WHERE pr = 0 OR pg_has_role(r.oid, pr, 'USAGE'))),
		       has_table_privilege(r.oid, c.oid, 'SELECT'), has_table_privilege(r.oid, c.oid, 'INSERT'),
		       has_table_privilege(r.oid, c.oid, 'UPDATE'), has_table_privilege(r.oid, c.oid, 'DELETE')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		CROSS JOIN (SELECT oid FROM pg_roles WHERE rolname = coalesce(nullif($1, ''), current_user)) r
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		  AND (c.relname = 'accounts' OR EXISTS (
		        SELECT 1 FROM pg_attribute a
		        WHERE a.attrelid = c.oid AND a.attname = 'account_id' AND a.attnum > 0 AND NOT a.attisdropped))
		ORDER BY c.relname`, role)
	if err != nil {
		return nil, fmt.Errorf("list tenanted tables: %w", classify(err))
	}
	defer rows.Close()
	var out []tenantedTable
	for rows.Next() {
		var t tenantedTable
		if err := rows.Scan(&t.name, &t.column, &t.rls, &t.forced, &t.policy, &t.sel, &t.ins, &t.upd, &t.del); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// inspectPolicies checks the tenanted tables of a singleschema database
// for role: row-level security enabled and forced, a policy that applies to
// role, no default tenant, and what role can reach through the policies.
//
// asAdmin says db connects as the admin, which then plants a canary tenant
// and takes on role with SET LOCAL ROLE in the probe's transaction; role
// defaults are not loaded by SET ROLE, so a default tenant is looked up in
// the catalog. Otherwise db connects as role itself (the server at start,
// role empty): no canary can be planted, so the probes see only the rows
// already there, but they run in the very session the server's queries
// would, defaults included.
func inspectPolicies(ctx context.Context, db *sql.DB, database, role string, asAdmin bool) (findings []Finding, checked []string, err error) {
	if role == "" {
		if err := db.QueryRowContext(ctx, `SELECT current_user`).Scan(&role); err != nil {
			return nil, nil, fmt.Errorf("read the connected role: %w", classify(err))
		}
	}
	tables, err := readTenantedTables(ctx, db, role)
	if err != nil {
		return nil, nil, err
	}
	found := map[string]bool{}
	var names []string
	for _, t := range tables {
		found[t.name] = true
		names = append(names, t.name)
		subject := "table " + t.name
		if !t.rls {
			findings = append(findings, Finding{Kind: FindingRLSDisabled, Database: database, Subject: subject,
				Problem: "row-level security is disabled, so every role that may read it sees every tenant's rows",
				Fix:     fmt.Sprintf("run ALTER TABLE %s ENABLE ROW LEVEL SECURITY", quoteIdent(t.name))})
		}
		if !t.forced {
			findings = append(findings, Finding{Kind: FindingRLSNotForced, Database: database, Subject: subject,
				Problem: "row-level security is not forced, so its owner (and any member of the owner) bypasses the policies",
				Fix:     fmt.Sprintf("run ALTER TABLE %s FORCE ROW LEVEL SECURITY", quoteIdent(t.name))})
		}
		if !t.policy {
			findings = append(findings, Finding{Kind: FindingPolicyMissing, Database: database, Subject: subject,
				Problem: fmt.Sprintf("no policy applies to role %q, so row-level security lets it read and write none of its rows", role),
				Fix:     "recreate policy tenant_isolation as strategy/migrations/singleschema/00002_row_level_security.sql does"})
		}
	}
	for _, t := range tables {
		if lacks := t.lacks(); len(lacks) > 0 {
			findings = append(findings, Finding{Kind: FindingGrantMissing, Database: database, Subject: "table " + t.name,
				Problem: fmt.Sprintf("role %q lacks %s on it, so the server's queries on it fail", role, strings.Join(lacks, ", ")),
				Fix:     "run `tenancy migrate`, which grants what the roles need"})
		}
	}
	var missing []string
	for _, name := range singleSchemaTables() {
		if !found[name] {
			missing = append(missing, name)
			findings = append(findings, Finding{Kind: FindingTableMissing, Database: database, Subject: "table " + name,
				Problem: "it does not exist", Fix: "run `tenancy migrate`"})
		}
	}
	checked = append(checked, fmt.Sprintf("%d tenanted tables in %s (%s): row-level security enabled and forced, a policy and grants for %s, no default tenant",
		len(tables), database, strings.Join(names, ", "), role))

	def, err := defaultTenant(ctx, db, role, asAdmin)
	if err != nil {
		return nil, nil, err
	}
	if def != "" {
		findings = append(findings, Finding{Kind: FindingDefaultTenant, Database: database, Subject: "setting app.tenant_id",
			Problem: fmt.Sprintf("role %q starts its sessions with a tenant (%s), so a transaction that forgets to set one acts as that tenant", role, def),
			Fix:     fmt.Sprintf("remove the default (ALTER ROLE %s RESET app.tenant_id, or ALTER DATABASE ... RESET app.tenant_id)", quoteIdent(role))})
	}
	if asAdmin && len(missing) > 0 {
		// The canary needs every table; the missing ones are findings already.
		return findings, checked, nil
	}
	probed, err := probe(ctx, db, database, role, tables, asAdmin)
	if err != nil {
		return nil, nil, fmt.Errorf("probe the policies as %q: %w", role, err)
	}
	findings = append(findings, probed...)
	if asAdmin {
		checked = append(checked, fmt.Sprintf("probed as %s in a rolled-back transaction with a canary tenant: no row reached with no tenant or another tenant set, no row written into another tenant", role))
	}
	return findings, checked, nil
}

// defaultTenant returns the app.tenant_id a session of role starts with,
// if any. As the admin it reads the ALTER ROLE / ALTER DATABASE settings
// that apply to role in this database; as role itself it reads the
// setting in a fresh transaction, which is what a query that forgets to
// set the tenant would see (whatever its source).
func defaultTenant(ctx context.Context, db *sql.DB, role string, asAdmin bool) (string, error) {
	var v string
	var err error
	if asAdmin {
		err = db.QueryRowContext(ctx, `
			SELECT coalesce(string_agg(s, ', '), '')
			FROM pg_db_role_setting d CROSS JOIN unnest(d.setconfig) s
			WHERE split_part(s, '=', 1) = 'app.tenant_id' AND split_part(s, '=', 2) <> ''
			  AND d.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = $1))
			  AND d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))`, role).Scan(&v)
	} else {
		err = inTx(ctx, db, func(tx *sql.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT coalesce(current_setting('app.tenant_id', true), '')`).Scan(&v)
		})
	}
	if err != nil {
		return "", fmt.Errorf("read the default of app.tenant_id: %w", classify(err))
	}
	return v, nil
}

// inTx runs fn in a transaction that is always rolled back.
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// maxProbeRows bounds the rows a probe counts.
const maxProbeRows = 1000

// Tenant ids the probes use. Identity columns hand out positive ids, so no
// account has these.
const (
	probeOtherTenant = -1 // "another tenant"
	probeOwnTenant   = -2 // the probing tenant when there is no canary
)

// probe tries, as role, to get past the policies of tables in one
// transaction that is rolled back. See inspectPolicies for asAdmin.
func probe(ctx context.Context, db *sql.DB, database, role string, tables []tenantedTable, asAdmin bool) ([]Finding, error) {
	var findings []Finding
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		p := prober{ctx: ctx, tx: tx, reached: map[FindingKind]map[string][]string{}}
		var canary int64
		if asAdmin {
			var err error
			if canary, err = plantCanary(ctx, tx); err != nil {
				return fmt.Errorf("plant a canary tenant: %w", err)
			}
			if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+quoteIdent(role)); err != nil {
				return fmt.Errorf("take on role %q: %w", role, classify(err))
			}
		}
		if err := p.run(tables, canary, asAdmin); err != nil {
			return err
		}
		findings = p.findings(database, role, tables)
		return nil
	})
	return findings, err
}

// plantCanary writes, as the admin (a superuser, so past the policies), an
// account and one row of it in each tenanted table, and returns its id.
// The caller's transaction is rolled back, so none of it stays.
func plantCanary(ctx context.Context, tx *sql.Tx) (int64, error) {
	var id, project, task int64
	err := tx.QueryRowContext(ctx, `SELECT nextval(pg_get_serial_sequence('accounts', 'id'))`).Scan(&id)
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO accounts (id, slug, name) VALUES ($1, $2, 'tenancy check canary')`,
			id, "tenancy-check-"+strconv.FormatInt(id, 10))
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO users (account_id, email, first_name, last_name, password, date_joined)
			VALUES ($1, 'canary@tenancy-check.invalid', 'Canary', 'Canary', '!', now())`, id)
	}
	if err == nil {
		err = tx.QueryRowContext(ctx, `INSERT INTO projects (account_id, name) VALUES ($1, 'canary') RETURNING id`, id).Scan(&project)
	}
	if err == nil {
		err = tx.QueryRowContext(ctx, `INSERT INTO tasks (account_id, project_id, name) VALUES ($1, $2, 'canary') RETURNING id`, id, project).Scan(&task)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO subtasks (account_id, task_id, name) VALUES ($1, $2, 'canary')`, id, task)
	}
	if err != nil {
		return 0, classify(err)
	}
	return id, nil
}

// prober runs the probe statements, each in a savepoint so that a refused
// one leaves the transaction usable, and records what got through:
// reached[kind][table] lists the statements.
type prober struct {
	ctx     context.Context
	tx      *sql.Tx
	reached map[FindingKind]map[string][]string
}

func (p *prober) record(kind FindingKind, table, what string) {
	if p.reached[kind] == nil {
		p.reached[kind] = map[string][]string{}
	}
	p.reached[kind][table] = append(p.reached[kind][table], what)
}

// leaked reports whether a read-side probe reached rows of table.
func (p *prober) leaked(table string) bool {
	return len(p.reached[FindingPolicyOpenWithoutTenant][table]) > 0 || len(p.reached[FindingPolicyOpenToOtherTenant][table]) > 0
}

func (p *prober) setTenant(v string) error {
	if _, err := p.tx.ExecContext(p.ctx, `SELECT set_config('app.tenant_id', $1, true)`, v); err != nil {
		return fmt.Errorf("set app.tenant_id: %w", classify(err))
	}
	return nil
}

// try runs one statement in a savepoint and rolls it back. stmtErr is the
// statement's own error; err means the probe itself failed.
func (p *prober) try(count bool, query string, args ...any) (rows int64, stmtErr, err error) {
	if _, err := p.tx.ExecContext(p.ctx, "SAVEPOINT tenancy_probe"); err != nil {
		return 0, nil, classify(err)
	}
	if count {
		stmtErr = p.tx.QueryRowContext(p.ctx, query, args...).Scan(&rows)
	} else {
		var res sql.Result
		if res, stmtErr = p.tx.ExecContext(p.ctx, query, args...); stmtErr == nil {
			rows, _ = res.RowsAffected()
		}
	}
	if _, err := p.tx.ExecContext(p.ctx, "ROLLBACK TO SAVEPOINT tenancy_probe"); err != nil {
		return 0, nil, classify(err)
	}
	if stmtErr != nil && errors.Is(classify(stmtErr), ErrUnavailable) {
		return 0, nil, classify(stmtErr)
	}
	return rows, stmtErr, nil
}

// reach runs the read-side probes on t in the current tenant setting:
// whether role can SELECT, UPDATE or DELETE rows (the canary's, when
// there is one, else any). A statement that affected rows, or failed on
// a row (the policy's WITH CHECK, or a foreign key), reached a row; a
// statement that matched none, or failed in the policy's own expression,
// did not.
func (p *prober) reach(kind FindingKind, t tenantedTable, canary int64) error {
	table, col := quoteIdent(t.name), quoteIdent(t.column)
	where, args := "", []any(nil)
	if canary != 0 {
		where, args = " WHERE "+col+" = $1", []any{canary}
	}
	if t.sel {
		// Bounded: on a big table whose policy is broken, how many rows
		// leak beyond a thousand does not matter, and counting them would.
		n, _, err := p.try(true, "SELECT count(*) FROM (SELECT FROM "+table+where+" LIMIT "+strconv.Itoa(maxProbeRows+1)+") r", args...)
		if err != nil {
			return err
		}
		switch {
		case n > maxProbeRows:
			p.record(kind, t.name, fmt.Sprintf("SELECT (over %d rows)", maxProbeRows))
		case n > 0:
			p.record(kind, t.name, fmt.Sprintf("SELECT (%d rows)", n))
		}
	}
	if canary == 0 {
		return nil // no rows of a known tenant to aim writes at
	}
	for _, w := range []struct {
		ok   bool
		verb string
		sql  string
	}{
		{t.upd, "UPDATE", "UPDATE " + table + " SET " + col + " = " + col + where},
		{t.del, "DELETE", "DELETE FROM " + table + where},
	} {
		if !w.ok {
			continue
		}
		n, stmtErr, err := p.try(false, w.sql, args...)
		if err != nil {
			return err
		}
		if n > 0 || isRLSViolation(stmtErr) || IsPgError(stmtErr, "23503") {
			p.record(kind, t.name, w.verb)
		}
	}
	return nil
}

// write runs the WITH CHECK probes on t as the probing tenant: inserting a
// row of another tenant and moving the tenant's rows to another tenant
// must be refused by the policy. A constraint error means the row got past WITH
// CHECK (which PostgreSQL checks first) and failed only later.
func (p *prober) write(t tenantedTable, canary int64) error {
	table, col := quoteIdent(t.name), quoteIdent(t.column)
	passed := func(n int64, stmtErr error) bool {
		var pgErr *pgconn.PgError
		return (stmtErr == nil && n > 0) || (errors.As(stmtErr, &pgErr) && strings.HasPrefix(pgErr.Code, "23"))
	}
	if t.ins {
		n, stmtErr, err := p.try(false, "INSERT INTO "+table+" ("+col+") VALUES ($1)", probeOtherTenant)
		if err != nil {
			return err
		}
		if passed(n, stmtErr) {
			p.record(FindingPolicyAllowsForeignWrite, t.name, "INSERT a row of another tenant")
		}
	}
	// An UPDATE that names no column in WHERE (or RETURNING) needs no
	// SELECT right, so only WITH CHECK judges its new rows: "UPDATE t SET
	// account_id = <other>" would move all of the tenant's rows. It is
	// tried only where the policy's USING held, so that it reaches the
	// canary's rows alone, not every tenant's.
	if t.upd && canary != 0 && !p.leaked(t.name) {
		n, stmtErr, err := p.try(false, "UPDATE "+table+" SET "+col+" = $1", probeOtherTenant)
		if err != nil {
			return err
		}
		if passed(n, stmtErr) {
			p.record(FindingPolicyAllowsForeignWrite, t.name, "UPDATE its rows into another tenant")
		}
	}
	return nil
}

// run probes every table: with no tenant set, with another tenant set,
// then writes as the canary (or a made-up) tenant. clear empties
// app.tenant_id first: the admin's SET ROLE does not load the app role's
// defaults (looked up separately), while the role's own session must be
// probed as it is.
func (p *prober) run(tables []tenantedTable, canary int64, clear bool) error {
	if clear {
		if err := p.setTenant(""); err != nil {
			return err
		}
	}
	for _, t := range tables {
		if err := p.reach(FindingPolicyOpenWithoutTenant, t, 0); err != nil {
			return err
		}
	}
	if canary != 0 {
		if err := p.setTenant(strconv.Itoa(probeOtherTenant)); err != nil {
			return err
		}
		for _, t := range tables {
			if err := p.reach(FindingPolicyOpenToOtherTenant, t, canary); err != nil {
				return err
			}
		}
		// Writes without a tenant must fail too (the no-tenant SELECT above
		// sees every row in the table, but only the canary's are safe to
		// aim writes at).
		if err := p.setTenant(""); err != nil {
			return err
		}
		for _, t := range tables {
			if err := p.reachWrites(FindingPolicyOpenWithoutTenant, t, canary); err != nil {
				return err
			}
		}
	}
	own := int64(probeOwnTenant)
	if canary != 0 {
		own = canary
	}
	if err := p.setTenant(strconv.FormatInt(own, 10)); err != nil {
		return err
	}
	for _, t := range tables {
		if err := p.write(t, canary); err != nil {
			return err
		}
	}
	return nil
}

// reachWrites is reach without the SELECT.
func (p *prober) reachWrites(kind FindingKind, t tenantedTable, canary int64) error {
	t.sel = false
	return p.reach(kind, t, canary)
}

// findings turns what got through into findings, in table order.
func (p *prober) findings(database, role string, tables []tenantedTable) []Finding {
	const fix = "the policy must name the tenant in USING and in WITH CHECK and match no row when no tenant is set: " +
		"USING (<tenant column> = (SELECT app_current_tenant())) WITH CHECK (<same>), as strategy/migrations/singleschema/00002_row_level_security.sql does"
	var out []Finding
	for _, t := range tables {
		for _, k := range []struct {
			kind   FindingKind
			format string
		}{
			{FindingPolicyOpenWithoutTenant, "with no tenant set, role %q could %s its rows"},
			{FindingPolicyOpenToOtherTenant, "with another tenant set, role %q could %s a tenant's rows"},
			{FindingPolicyAllowsForeignWrite, "role %q could %s: WITH CHECK let it through"},
		} {
			if what := p.reached[k.kind][t.name]; len(what) > 0 {
				out = append(out, Finding{Kind: k.kind, Database: database, Subject: "table " + t.name,
					Problem: fmt.Sprintf(k.format, role, strings.Join(what, ", ")), Fix: fix})
			}
		}
	}
	return out
}

// isRLSViolation reports whether err is PostgreSQL refusing a row for
// row-level security (42501 is also the code of a missing privilege).
func isRLSViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.Contains(pgErr.Message, "row-level security")
}

// checkPolicies is what the singleschema server checks at start beyond
// its roles (checkRuntimeRole, checkReaderRole): the tenanted tables'
// row-level security and policies, probed as the app role.
//
// It runs as the app role, not the admin. The server does not need, and
// should not hold, the owner's credentials; and everything that decides
// whether this role's queries stay inside one tenant is visible to the
// role itself (pg_class, pg_policy, its own grants and session defaults),
// while probing from its own session tests exactly what its queries can
// reach. What it cannot do is plant a canary tenant, so on an empty
// database a policy that lets every row be read shows up only in `tenancy
// check`. Pending migrations and missing databases are check's business
// too: neither lets one tenant see another's rows.
func checkPolicies(ctx context.Context, db *sql.DB, database string) error {
	fs, _, err := inspectPolicies(ctx, db, database, "", false)
	if err != nil {
		return fmt.Errorf("check row-level security as the server's role: %w", err)
	}
	if len(fs) == 0 {
		return nil
	}
	lines := make([]string, len(fs))
	for i, f := range fs {
		lines[i] = "  - " + f.String()
	}
	return fmt.Errorf("%w:\n%s\nfix these and start again (`tenancy check`, as the admin, lists every finding)",
		ErrUnsafeDeployment, strings.Join(lines, "\n"))
}
