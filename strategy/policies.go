package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

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
// SELECT on accounts (tenants are created by the admin) and subtask_counts
// (kept by triggers), SELECT, INSERT, UPDATE and DELETE on the other tables
// the migrations create (as grants gives). A table it does not know may be none of the server's business.
func (t tenantedTable) lacks() []string {
	if !slices.Contains(singleSchemaTables(), t.name) {
		return nil
	}
	var out []string
	for _, p := range []struct {
		name string
		has  bool
	}{{"SELECT", t.sel}, {"INSERT", t.ins}, {"UPDATE", t.upd}, {"DELETE", t.del}} {
		if !p.has && (p.name == "SELECT" || (t.name != "accounts" && t.name != "subtask_counts")) {
			out = append(out, p.name)
		}
	}
	return out
}

// singleSchemaTables are the tenanted tables the singleschema migrations
// create, parents first.
func singleSchemaTables() []string {
	return []string{"accounts", "users", "projects", "tasks", "subtasks", "subtask_counts"}
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
