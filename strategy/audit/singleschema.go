package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"tenancy/strategy"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pg"
	ssmigrations "tenancy/strategy/singleschema/migrations"

	"github.com/jackc/pgx/v5/pgconn"
)

// tenantedTable is a singleschema table that holds tenants' rows, with
// what the inspected role may do to it.
type tenantedTable struct {
	oid  uint32
	name string
	// column names each row's tenant: id for accounts, account_id, or a
	// column with a foreign key to accounts (id). Empty: the table reaches
	// a tenant only through a foreign key into another tenanted table.
	column string
	rls    bool // ENABLE ROW LEVEL SECURITY
	forced bool // FORCE ROW LEVEL SECURITY
	// policy: some permissive policy applies to the role.
	policy             bool
	sel, ins, upd, del bool // the role's privileges
}

// singleSchemaTables are the tenanted tables the singleschema migrations
// create, parents first.
func singleSchemaTables() []string {
	return []string{"accounts", "users", "projects", "tasks", "subtasks", "subtask_counts"}
}

// readTenantedTables finds the tables of schema public that hold tenants'
// rows: accounts, every table with an account_id column, and every table
// with a foreign key into one of those (transitively), so that a table a
// later migration adds is found whatever it calls its tenant, or if it
// reaches its tenant only through a parent. role is the role whose
// privileges and policies count; empty means the connected role.
func readTenantedTables(ctx context.Context, q Querier, role string) ([]tenantedTable, error) {
	rows, err := q.QueryContext(ctx, `
		WITH RECURSIVE pub AS (
		    SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		), with_account AS (
		    SELECT pub.oid FROM pub WHERE pub.relname = 'accounts' OR EXISTS (
		        SELECT 1 FROM pg_attribute a
		        WHERE a.attrelid = pub.oid AND a.attname = 'account_id' AND a.attnum > 0 AND NOT a.attisdropped)
		), tenanted(oid) AS (
		    SELECT oid FROM with_account
		    UNION
		    SELECT k.conrelid FROM pg_constraint k JOIN tenanted t ON k.confrelid = t.oid
		    WHERE k.contype = 'f' AND k.conrelid IN (SELECT oid FROM pub)
		), r AS (SELECT oid FROM pg_roles WHERE rolname = coalesce(nullif($1, ''), current_user))
		SELECT c.oid, c.relname,
		       CASE WHEN c.relname = 'accounts' THEN 'id'
		            WHEN c.oid IN (SELECT oid FROM with_account) THEN 'account_id'
		            ELSE coalesce((SELECT a.attname FROM pg_constraint k
		                           JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
		                           WHERE k.conrelid = c.oid AND k.contype = 'f' AND cardinality(k.conkey) = 1
		                             AND k.confrelid = to_regclass('public.accounts')
		                           ORDER BY a.attnum LIMIT 1), '')
		       END,
		       c.relrowsecurity, c.relforcerowsecurity,
		       EXISTS (SELECT 1 FROM pg_policy p
		               WHERE p.polrelid = c.oid AND p.polpermissive
		                 AND EXISTS (SELECT 1 FROM unnest(p.polroles) pr WHERE pr = 0 OR pg_has_role(r.oid, pr, 'USAGE'))),
		       has_any_column_privilege(r.oid, c.oid, 'SELECT'), has_any_column_privilege(r.oid, c.oid, 'INSERT'),
		       has_any_column_privilege(r.oid, c.oid, 'UPDATE'), has_table_privilege(r.oid, c.oid, 'DELETE')
		FROM tenanted JOIN pg_class c ON c.oid = tenanted.oid CROSS JOIN r
		ORDER BY c.relname`, role)
	if err != nil {
		return nil, fmt.Errorf("list tenanted tables: %w", pg.Classify(err))
	}
	defer rows.Close()
	var out []tenantedTable
	for rows.Next() {
		var t tenantedTable
		if err := rows.Scan(&t.oid, &t.name, &t.column, &t.rls, &t.forced, &t.policy, &t.sel, &t.ins, &t.upd, &t.del); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// tenantPolicy matches the one form of policy expression that keeps a
// tenant to its rows: the tenant column equal to the transaction's tenant,
// app_current_tenant(), called as migration 00009 does (Citus refuses a
// sub-query in a policy) or as a sub-select, as migration 00002 did.
// Anything else (a comparison other than =, an OR, a constant tenant,
// session_user) may let one tenant see another's rows; the probes catch
// the common mistakes, this catches the rest.
var tenantPolicy = regexp.MustCompile(`^\(("?[a-z_][a-z0-9_]*"?) = (\( SELECT (public\.)?app_current_tenant\(\) AS app_current_tenant\)|(public\.)?app_current_tenant\(\))\)$`)

// appCurrentTenant is the body of app_current_tenant(), which every
// policy calls: the transaction's tenant, or NULL (no row) when none is
// set. Whitespace aside, it must read exactly so.
const appCurrentTenant = `SELECT nullif(current_setting('app.tenant_id', true), '')::bigint`

// auditPolicyText reads the permissive policies that apply to role on the
// tenanted tables, and app_current_tenant() itself, and reports any that
// is not the tenant policy.
func auditPolicyText(ctx context.Context, q Querier, database, role string, tables []tenantedTable) ([]Finding, error) {
	var out []Finding
	var src sql.NullString
	var definer, configured bool
	err := q.QueryRowContext(ctx, `
		SELECT p.prosrc, p.prosecdef, p.proconfig IS NOT NULL FROM pg_proc p
		WHERE p.oid = to_regprocedure('public.app_current_tenant()')`).Scan(&src, &definer, &configured)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		out = append(out, Finding{Kind: FindingPolicyNotCanonical, Database: database, Subject: "function public.app_current_tenant()",
			Problem: "it does not exist, so the tenant policies cannot say which tenant a transaction is for",
			Fix:     "run `tenancy migrate`"})
	case err != nil:
		return nil, fmt.Errorf("read app_current_tenant(): %w", pg.Classify(err))
	case strings.Join(strings.Fields(src.String), " ") != appCurrentTenant || definer || configured:
		out = append(out, Finding{Kind: FindingPolicyNotCanonical, Database: database, Subject: "function public.app_current_tenant()",
			Problem: fmt.Sprintf("it reads %q%s, not the transaction's app.tenant_id alone, and every tenant policy trusts it", strings.TrimSpace(src.String),
				map[bool]string{true: " with settings or another role's rights", false: ""}[definer || configured]),
			Fix: "recreate it as strategy/singleschema/migrations/00002_row_level_security.sql does (CREATE OR REPLACE FUNCTION app_current_tenant() ...)"})
	}

	byOID := map[uint32]tenantedTable{}
	oids := make([]int64, 0, len(tables))
	for _, t := range tables {
		byOID[t.oid] = t
		oids = append(oids, int64(t.oid))
	}
	rows, err := q.QueryContext(ctx, `
		SELECT p.polrelid, p.polname, p.polcmd::text,
		       coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
		FROM pg_policy p
		WHERE p.polrelid::bigint = ANY($2) AND p.polpermissive
		  AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = $1) -- member of every role, subject to no policy
		  AND EXISTS (SELECT 1 FROM unnest(p.polroles) pr
		              WHERE pr = 0 OR pg_has_role((SELECT oid FROM pg_roles WHERE rolname = $1), pr, 'USAGE'))
		ORDER BY p.polrelid::regclass::text, p.polname`, role, oids)
	if err != nil {
		return nil, fmt.Errorf("read the policies: %w", pg.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var rel uint32
		var name, cmd, using, check string
		if err := rows.Scan(&rel, &name, &cmd, &using, &check); err != nil {
			return nil, err
		}
		t := byOID[rel]
		if canonicalPolicy(t.column, cmd, using, check) {
			continue
		}
		var problem string
		if t.column == "" {
			problem = fmt.Sprintf("policy %s applies to role %q, but the table has no tenant column to compare with the transaction's tenant, so whether it keeps tenants apart depends on its own logic (USING %s)", name, role, orNone(using))
		} else {
			problem = fmt.Sprintf("policy %s applies to role %q with USING %s and WITH CHECK %s, not %s = the transaction's tenant: it may let one tenant reach another's rows", name, role, orNone(using), orNone(check), t.column)
		}
		out = append(out, Finding{Kind: FindingPolicyNotCanonical, Database: database, Subject: "table " + t.name, Problem: problem,
			Fix: fmt.Sprintf("drop it, or make it USING (%[1]s = app_current_tenant()) WITH CHECK (%[1]s = app_current_tenant()) as strategy/singleschema/migrations/00009_distributable.sql does", orColumn(t.column))})
	}
	return out, rows.Err()
}

// canonicalPolicy reports whether a permissive policy's expressions are the
// tenant policy on column: each expression the command uses compares the
// tenant column, and nothing else. A missing WITH CHECK on ALL or UPDATE
// means USING is used for it.
func canonicalPolicy(column, cmd, using, check string) bool {
	if column == "" {
		return false
	}
	is := func(expr string) bool {
		m := tenantPolicy.FindStringSubmatch(expr)
		return m != nil && strings.Trim(m[1], `"`) == column
	}
	switch cmd {
	case "a": // INSERT: WITH CHECK only
		return is(check)
	case "r", "d": // SELECT, DELETE: USING only
		return is(using)
	default: // ALL, UPDATE
		return is(using) && (check == "" || is(check))
	}
}

func orNone(expr string) string {
	if expr == "" {
		return "(none)"
	}
	return expr
}

func orColumn(column string) string {
	if column == "" {
		return "account_id"
	}
	return column
}

// auditViews finds views and materialized views over tenanted tables
// (directly or through other views) that role may read and that do not
// apply its row-level security: a materialized view never does, and a
// view checks the policies as its owner unless it is security_invoker, so
// one owned by a role that bypasses them shows every tenant's rows.
func auditViews(ctx context.Context, q Querier, database, role string, tables []tenantedTable) ([]Finding, error) {
	oids := make([]int64, 0, len(tables))
	for _, t := range tables {
		oids = append(oids, int64(t.oid))
	}
	rows, err := q.QueryContext(ctx, `
		WITH RECURSIVE deps AS (
		    SELECT DISTINCT rw.ev_class AS view, d.refobjid AS base
		    FROM pg_depend d JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
		    WHERE d.refclassid = 'pg_class'::regclass AND rw.ev_class <> d.refobjid
		), reach(view) AS (
		    SELECT view FROM deps WHERE base::bigint = ANY($2)
		    UNION
		    SELECT deps.view FROM deps JOIN reach ON deps.base = reach.view
		), r AS (SELECT oid FROM pg_roles WHERE rolname = $1)
		SELECT c.oid::regclass::text, c.relkind = 'm', pg_get_userbyid(c.relowner)
		FROM reach JOIN pg_class c ON c.oid = reach.view CROSS JOIN r
		WHERE has_table_privilege(r.oid, c.oid, 'SELECT')
		  AND (c.relkind = 'm' OR (
		        NOT coalesce(c.reloptions::text[] && ARRAY['security_invoker=true', 'security_invoker=on', 'security_invoker=1'], false)
		        AND EXISTS (SELECT 1 FROM pg_roles o WHERE (o.rolsuper OR o.rolbypassrls) AND pg_has_role(c.relowner, o.oid, 'MEMBER'))))
		ORDER BY 1`, role, oids)
	if err != nil {
		return nil, fmt.Errorf("list views over tenanted tables: %w", pg.Classify(err))
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var name, owner string
		var materialized bool
		if err := rows.Scan(&name, &materialized, &owner); err != nil {
			return nil, err
		}
		f := Finding{Kind: FindingViewBypassesRLS, Database: database, Subject: "view " + name,
			Problem: fmt.Sprintf("role %q may read it; it reads tenanted tables as its owner %q, who bypasses row-level security, so it shows every tenant's rows", role, owner),
			Fix:     fmt.Sprintf("revoke it (REVOKE SELECT ON %s FROM %s), or make it ALTER VIEW %s SET (security_invoker = true)", name, pg.QuoteIdent(role), name)}
		if materialized {
			f.Subject = "materialized view " + name
			f.Problem = fmt.Sprintf("role %q may read it, and row-level security never applies to a materialized view: it shows every tenant's rows it was refreshed with", role)
			f.Fix = fmt.Sprintf("revoke it (REVOKE SELECT ON %s FROM %s), or drop it", name, pg.QuoteIdent(role))
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// inspectPolicies checks the tenanted tables of a singleschema database
// for role: row-level security enabled and forced, the tenant policy and
// no other, exactly the grants the server needs, no view that reads them
// past the policies, no default tenant, and what role can reach through
// the policies, probed.
//
// asAdmin says db connects as the admin, which then plants two canary
// tenants and takes on role with SET LOCAL ROLE in the probe's
// transaction; role defaults are not loaded by SET ROLE, so a default
// tenant is looked up in the catalog. Otherwise db connects as role itself
// (the server at start, role empty): no canary can be planted, so the
// probes see only the rows already there, but they run in the very session
// the server's queries would, defaults included.
func inspectPolicies(ctx context.Context, db *sql.DB, database, role string, asAdmin bool) (findings []Finding, checked []string, err error) {
	if role == "" {
		if err := db.QueryRowContext(ctx, `SELECT current_user`).Scan(&role); err != nil {
			return nil, nil, fmt.Errorf("read the connected role: %w", pg.Classify(err))
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
				Fix:     fmt.Sprintf("run ALTER TABLE %s ENABLE ROW LEVEL SECURITY", pg.QuoteIdent(t.name))})
		}
		if !t.forced {
			findings = append(findings, Finding{Kind: FindingRLSNotForced, Database: database, Subject: subject,
				Problem: "row-level security is not forced, so its owner (and any member of the owner) bypasses the policies",
				Fix:     fmt.Sprintf("run ALTER TABLE %s FORCE ROW LEVEL SECURITY", pg.QuoteIdent(t.name))})
		}
		if !t.policy {
			findings = append(findings, Finding{Kind: FindingPolicyMissing, Database: database, Subject: subject,
				Problem: fmt.Sprintf("no policy applies to role %q, so row-level security lets it read and write none of its rows", role),
				Fix:     "recreate policy tenant_isolation as strategy/singleschema/migrations/00002_row_level_security.sql does"})
		}
		if t.column == "" {
			findings = append(findings, Finding{Kind: FindingNoTenantColumn, Database: database, Subject: subject,
				Problem: "it holds tenants' rows (it has a foreign key into a tenanted table) but no account_id, so no tenant policy can compare its rows with the transaction's tenant, and the tenant scope does not see it",
				Fix:     "add account_id (NOT NULL, with a foreign key through (account_id, <parent id>)), row-level security and the tenant policy, as the other tables have"})
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
	text, err := auditPolicyText(ctx, db, database, role, tables)
	if err != nil {
		return nil, nil, err
	}
	findings = append(findings, text...)
	views, err := auditViews(ctx, db, database, role, tables)
	if err != nil {
		return nil, nil, err
	}
	findings = append(findings, views...)
	privs, err := tablePrivileges(ctx, db, role, "public")
	if err != nil {
		return nil, nil, err
	}
	want := tableGrants()
	maps.Copy(want, operators.AppGrants())
	shared := maps.Clone(found)
	for t := range operators.AppGrants() {
		shared[t] = true // no tenant's rows: reachable, with exactly these grants
	}
	findings = append(findings, grantFindings(database, role, false, want, privs, shared)...)
	checked = append(checked, fmt.Sprintf("%d tenanted tables in %s (%s): row-level security enabled and forced, the tenant policy and no other, exactly the grants %s needs, no view past the policies, no default tenant",
		len(tables), database, strings.Join(names, ", "), role))

	def, err := defaultTenant(ctx, db, role, asAdmin)
	if err != nil {
		return nil, nil, err
	}
	if def != "" {
		findings = append(findings, Finding{Kind: FindingDefaultTenant, Database: database, Subject: "setting app.tenant_id",
			Problem: fmt.Sprintf("role %q starts its sessions with a tenant (%s), so a transaction that forgets to set one acts as that tenant", role, def),
			Fix:     fmt.Sprintf("remove the default (ALTER ROLE %s RESET app.tenant_id, or ALTER DATABASE ... RESET app.tenant_id)", pg.QuoteIdent(role))})
	}
	if asAdmin && len(missing) > 0 {
		// The canaries need every table; the missing ones are findings already.
		return findings, checked, nil
	}
	probed, err := probe(ctx, db, database, role, tables, asAdmin)
	if err != nil {
		return nil, nil, fmt.Errorf("probe the policies as %q: %w", role, err)
	}
	findings = append(findings, probed...)
	if asAdmin {
		checked = append(checked, fmt.Sprintf("probed as %s in a rolled-back transaction with two canary tenants: no row reached with no tenant set, no row of one canary reached as the other (both ways), no row written into another tenant", role))
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
		err = pg.InTx(ctx, db, func(tx *sql.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT coalesce(current_setting('app.tenant_id', true), '')`).Scan(&v)
		})
	}
	if err != nil {
		return "", fmt.Errorf("read the default of app.tenant_id: %w", pg.Classify(err))
	}
	return v, nil
}

// maxProbeRows bounds the rows a probe counts.
const maxProbeRows = 1000

// Tenant ids the probes use when they cannot plant canaries (the server's
// own check). Identity columns hand out positive ids, so no account has
// these.
const (
	probeOtherTenant = -1 // "another tenant"
	probeOwnTenant   = -2 // the probing tenant
	// canaryTenant and the id below it are the tenants `tenancy check`
	// plants (see plantCanary).
	canaryTenant = -101
)

// probe tries, as role, to get past the policies of tables in one
// transaction that is rolled back. See inspectPolicies for asAdmin.
func probe(ctx context.Context, db *sql.DB, database, role string, tables []tenantedTable, asAdmin bool) ([]Finding, error) {
	var findings []Finding
	citus, err := pg.IsDistributed(ctx, db, "public.subtasks")
	if err != nil {
		return nil, fmt.Errorf("probe the policies: %w", pg.Classify(err))
	}
	err = pg.InTx(ctx, db, func(tx *sql.Tx) error {
		p := prober{ctx: ctx, tx: tx, citus: citus, reached: map[FindingKind]map[string][]string{}}
		var canaries []int64
		// On Citus the canaries cannot be used: Citus refuses to read, as
		// the app role, shards the admin wrote to in the same transaction
		// ("cannot perform query on placements that were modified in this
		// transaction by a different user"). The probes then aim at the
		// rows already there, reading only (see run).
		if asAdmin && !citus {
			for _, want := range []int64{canaryTenant, canaryTenant - 1} {
				id, err := plantCanary(ctx, tx, want)
				if err != nil {
					return fmt.Errorf("plant a canary tenant: %w", err)
				}
				canaries = append(canaries, id)
			}
		}
		if asAdmin {
			if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+pg.QuoteIdent(role)); err != nil {
				return fmt.Errorf("take on role %q: %w", role, pg.Classify(err))
			}
		}
		if err := p.run(tables, canaries, asAdmin); err != nil {
			return err
		}
		findings = p.findings(database, role, tables)
		return nil
	})
	return findings, err
}

// plantCanary writes, as the admin (a superuser, so past the policies), an
// account with id and one row of it in each tenanted table, and returns
// id. The caller's transaction is rolled back, so none of it stays. The
// ids are its own (negative, which the identity columns never hand out),
// so that a check draws nothing from the sequences: seeding after it
// gives the ids it would have given before.
func plantCanary(ctx context.Context, tx *sql.Tx, id int64) (int64, error) {
	_, err := tx.ExecContext(ctx, `INSERT INTO public.accounts (id, slug, name) OVERRIDING SYSTEM VALUE VALUES ($1, $2, 'tenancy check canary')`,
		id, "tenancy-check"+strconv.FormatInt(id, 10))
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO public.users (id, account_id, email, first_name, last_name, password, date_joined)
			OVERRIDING SYSTEM VALUE VALUES ($1, $1, 'canary@tenancy-check.invalid', 'Canary', 'Canary', '!', now())`, id)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO public.projects (id, account_id, name) OVERRIDING SYSTEM VALUE VALUES ($1, $1, 'canary')`, id)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO public.tasks (id, account_id, project_id, name) OVERRIDING SYSTEM VALUE VALUES ($1, $1, $1, 'canary')`, id)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO public.subtasks (id, account_id, task_id, name) OVERRIDING SYSTEM VALUE VALUES ($1, $1, $1, 'canary')`, id)
	}
	if err != nil {
		return 0, pg.Classify(err)
	}
	return id, nil
}

// prober runs the probe statements, each in a savepoint so that a refused
// one leaves the transaction usable, and records what got through:
// reached[kind][table] lists the statements.
type prober struct {
	ctx context.Context
	tx  *sql.Tx
	// citus: the tables are distributed, and the probes' reads and writes
	// run on the workers, which see the tenant only as the server sets it
	// there (SET LOCAL, passed on), never through set_config().
	citus   bool
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

func (p *prober) setTenant(id int64) error {
	v := ""
	if id != 0 {
		v = strconv.FormatInt(id, 10)
	}
	if p.citus {
		// v is empty or digits: nothing to quote.
		for _, stmt := range []string{"SET LOCAL citus.propagate_set_commands = 'local'", "SET LOCAL app.tenant_id = '" + v + "'"} {
			if _, err := p.tx.ExecContext(p.ctx, stmt); err != nil {
				return fmt.Errorf("set app.tenant_id on the workers: %w", pg.Classify(err))
			}
		}
		return nil
	}
	if _, err := p.tx.ExecContext(p.ctx, `SELECT set_config('app.tenant_id', $1, true)`, v); err != nil {
		return fmt.Errorf("set app.tenant_id: %w", pg.Classify(err))
	}
	return nil
}

// try runs one statement in a savepoint and rolls it back. stmtErr is the
// statement's own error; err means the probe itself failed.
func (p *prober) try(count bool, query string, args ...any) (rows int64, stmtErr, err error) {
	if _, err := p.tx.ExecContext(p.ctx, "SAVEPOINT tenancy_probe"); err != nil {
		return 0, nil, pg.Classify(err)
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
		return 0, nil, pg.Classify(err)
	}
	// Whatever the server answered is the statement's own result (a
	// refusal is what a probe hopes for); anything else means the probe
	// lost its connection.
	var pgErr *pgconn.PgError
	if stmtErr != nil && !errors.As(stmtErr, &pgErr) {
		return 0, nil, pg.Classify(stmtErr)
	}
	return rows, stmtErr, nil
}

// probeTarget is whose rows a probe aims at: one tenant's (target), any
// tenant's but one (not), or, both zero, any row at all.
type probeTarget struct {
	target, not int64
}

func (pt probeTarget) where(col string) (string, []any) {
	switch {
	case col == "" && pt.target != 0:
		return "", nil // no tenant column to aim with: not probed
	case pt.target != 0:
		return " WHERE " + col + " = $1", []any{pt.target}
	case pt.not != 0 && col != "":
		return " WHERE " + col + " <> $1", []any{pt.not}
	}
	return "", nil
}

// reach runs the read-side probes on t in the current tenant setting:
// whether role can SELECT the rows aimed at, and, when they are one
// tenant's, UPDATE or DELETE them. A statement that affected rows, or
// failed on a row (the policy's WITH CHECK, or a foreign key), reached a
// row; a statement that matched none, or failed in the policy's own
// expression, did not.
func (p *prober) reach(kind FindingKind, t tenantedTable, pt probeTarget, selects bool) error {
	if pt.target != 0 && t.column == "" {
		return nil
	}
	table, col := pg.QuoteIdent(t.name), ""
	if t.column != "" {
		col = pg.QuoteIdent(t.column)
	}
	where, args := pt.where(col)
	if t.sel && selects {
		// Bounded: on a big table whose policy is broken, how many rows
		// leak beyond a thousand does not matter, and counting them would.
		// "SELECT 1", not "SELECT": Citus refuses a subquery with no
		// columns ("a column definition list is required ...").
		query := "SELECT count(*) FROM (SELECT 1 FROM " + table + where + " LIMIT " + strconv.Itoa(maxProbeRows+1) + ") r"
		n, stmtErr, err := p.try(true, query, args...)
		if err != nil {
			return err
		}
		if stmtErr != nil {
			// Row-level security filters rows; it does not refuse a
			// read. A refused one counted nothing, so it proves nothing
			// either: the check fails rather than pass unseen.
			return fmt.Errorf("probe %s as the app role: %s: %w", t.name, query, pg.Classify(stmtErr))
		}
		of := ""
		if pt.not != 0 {
			of = " of other tenants"
		}
		switch {
		case n > maxProbeRows:
			p.record(kind, t.name, fmt.Sprintf("SELECT (over %d rows%s)", maxProbeRows, of))
		case n > 0:
			p.record(kind, t.name, fmt.Sprintf("SELECT (%d rows%s)", n, of))
		}
	}
	if pt.target == 0 {
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
		if n > 0 || pg.IsRLSViolation(stmtErr) || pg.IsPgError(stmtErr, "23503") {
			p.record(kind, t.name, w.verb)
		}
	}
	return nil
}

// write runs the WITH CHECK probes on t as the probing tenant: inserting a
// row of another tenant (other) and moving the tenant's rows to it must be
// refused by the policy. A constraint error means the row got past WITH
// CHECK (which PostgreSQL checks first) and failed only later.
func (p *prober) write(t tenantedTable, other int64, planted bool) error {
	if t.column == "" {
		return nil
	}
	table, col := pg.QuoteIdent(t.name), pg.QuoteIdent(t.column)
	passed := func(n int64, stmtErr error) bool {
		var pgErr *pgconn.PgError
		return (stmtErr == nil && n > 0) || (errors.As(stmtErr, &pgErr) && strings.HasPrefix(pgErr.Code, "23"))
	}
	if t.ins {
		n, stmtErr, err := p.try(false, "INSERT INTO "+table+" ("+col+") VALUES ($1)", other)
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
	if t.upd && planted && !p.leaked(t.name) {
		n, stmtErr, err := p.try(false, "UPDATE "+table+" SET "+col+" = $1", other)
		if err != nil {
			return err
		}
		if passed(n, stmtErr) {
			p.record(FindingPolicyAllowsForeignWrite, t.name, "UPDATE its rows into another tenant")
		}
	}
	return nil
}

// run probes every table: with no tenant set; with each canary set,
// reaching for the other's rows and for any row not its own (both orders
// of ids, so that a comparison such as <= is caught whichever way it
// leans); then writes as the first canary (or a made-up tenant) into the
// second (or another made-up one). clear empties app.tenant_id first:
// the admin's SET ROLE does not load the app role's defaults (looked up
// separately), while the role's own session must be probed as it is.
func (p *prober) run(tables []tenantedTable, canaries []int64, clear bool) error {
	if clear {
		if err := p.setTenant(0); err != nil {
			return err
		}
	}
	for _, t := range tables {
		if err := p.reach(FindingPolicyOpenWithoutTenant, t, probeTarget{}, true); err != nil {
			return err
		}
	}
	own, other := int64(probeOwnTenant), int64(probeOtherTenant)
	if len(canaries) != 2 {
		// No canaries: as a tenant that has no rows, every row the
		// policies let through is another tenant's. Reads only: the rows
		// are real ones.
		if err := p.setTenant(own); err != nil {
			return err
		}
		for _, t := range tables {
			if err := p.reach(FindingPolicyOpenToOtherTenant, t, probeTarget{not: own}, true); err != nil {
				return err
			}
		}
	}
	if len(canaries) == 2 {
		own, other = canaries[0], canaries[1]
		// Writes without a tenant must fail too (the no-tenant SELECT
		// above sees every row in the table, but only the canaries' are
		// safe to aim writes at).
		for _, t := range tables {
			if err := p.reach(FindingPolicyOpenWithoutTenant, t, probeTarget{target: own}, false); err != nil {
				return err
			}
		}
		for _, pair := range [][2]int64{{own, other}, {other, own}} {
			if err := p.setTenant(pair[0]); err != nil {
				return err
			}
			for _, t := range tables {
				if err := p.reach(FindingPolicyOpenToOtherTenant, t, probeTarget{target: pair[1]}, true); err != nil {
					return err
				}
				if err := p.reach(FindingPolicyOpenToOtherTenant, t, probeTarget{not: pair[0]}, true); err != nil {
					return err
				}
			}
		}
	}
	if err := p.setTenant(own); err != nil {
		return err
	}
	for _, t := range tables {
		if err := p.write(t, other, len(canaries) == 2); err != nil {
			return err
		}
	}
	return nil
}

// findings turns what got through into findings, in table order.
func (p *prober) findings(database, role string, tables []tenantedTable) []Finding {
	const fix = "the policy must name the tenant in USING and in WITH CHECK and match no row when no tenant is set: " +
		"USING (<tenant column> = app_current_tenant()) WITH CHECK (<same>), as strategy/singleschema/migrations/00009_distributable.sql does"
	var out []Finding
	for _, t := range tables {
		for _, k := range []struct {
			kind   FindingKind
			format string
		}{
			{FindingPolicyOpenWithoutTenant, "with no tenant set, role %q could %s its rows"},
			{FindingPolicyOpenToOtherTenant, "with one tenant set, role %q could %s another tenant's rows"},
			{FindingPolicyAllowsForeignWrite, "role %q could %s: WITH CHECK let it through"},
		} {
			if what := p.reached[k.kind][t.name]; len(what) > 0 {
				out = append(out, Finding{Kind: k.kind, Database: database, Subject: "table " + t.name,
					Problem: fmt.Sprintf(k.format, role, strings.Join(dedupe(what), ", ")), Fix: fix})
			}
		}
	}
	return out
}

// dedupe drops repeats, keeping the first of each.
func dedupe(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// SingleSchemaServer is what the singleschema server checks at start beyond
// its roles' attributes (RuntimeRole, Reader): everything auditDatabase and inspectPolicies find
// for its own role in its own database, probed from its own session.
//
// It runs as the app role, not the admin. The server does not need, and
// should not hold, the owner's credentials; and everything that decides
// whether this role's queries stay inside one tenant is visible to the
// role itself (the catalog, its own grants and session defaults), while
// probing from its own session tests exactly what its queries can reach.
// What it cannot do is plant canary tenants, so on an empty database a
// policy that lets every row be read shows up only in `tenancy check`.
// Pending migrations and missing databases are check's business too:
// neither lets one tenant see another's rows.
func SingleSchemaServer(ctx context.Context, db *sql.DB, opts strategy.Options) error {
	fs, err := auditDatabase(ctx, db, auditTarget{database: opts.Database, admin: opts.AdminUser, counter: opts.CountsOwner(), schemas: []string{"public"}})
	if err != nil {
		return fmt.Errorf("check the server's database role: %w", err)
	}
	more, _, err := inspectPolicies(ctx, db, opts.Database, "", false)
	if err != nil {
		return fmt.Errorf("check row-level security as the server's role: %w", err)
	}
	return unsafeDeployment(append(fs, more...))
}

// unsafeDeployment is ErrUnsafeDeployment listing fs, or nil.
func unsafeDeployment(fs []Finding) error {
	if len(fs) == 0 {
		return nil
	}
	lines := make([]string, len(fs))
	for i, f := range fs {
		lines[i] = "  - " + f.String()
	}
	kind := strategy.ErrUnsafeDeployment
	if slices.ContainsFunc(fs, func(f Finding) bool { return f.Kind.aboutRole() }) {
		kind = fmt.Errorf("%w (%w)", strategy.ErrUnsafeDeployment, strategy.ErrUnsafeRole)
	}
	return fmt.Errorf("%w:\n%s\nfix these and start again (`tenancy check`, as the admin, lists every finding)",
		kind, strings.Join(lines, "\n"))
}

// CheckSingleSchema inspects the singleschema deployment described by opts
// as the admin role (PGUSER) and returns its findings: runtime roles that
// could get past row-level security or reach more than the server needs,
// tenanted tables without it, policies that let rows through, pending
// migrations, missing databases and roles, and on Citus shards the app
// role cannot insert into (checkShardGrants).
//
// It probes the policies for real: in one transaction that is always
// rolled back, it plants two canary tenants (an account and one row in
// each tenanted table, with ids of their own), takes on the app role with
// SET LOCAL ROLE, and tries to read, update and delete rows with no tenant
// set and with the other canary set, and to insert a row for, or move a
// row to, another tenant. Nothing it does is committed. That needs a
// superuser admin, which singleschema requires anyway.
//
// An error means the check could not run (e.g. PostgreSQL is unreachable);
// what is wrong with the deployment is reported as findings.
func CheckSingleSchema(ctx context.Context, opts strategy.Options) (Report, error) {
	if err := opts.Validate(); err != nil {
		return Report{}, fmt.Errorf("invalid options: %w", err)
	}
	ctx, cancel := pg.WithTimeout(ctx)
	defer cancel()
	rep := Report{Strategy: strategy.SingleSchema}
	var dbs, roles map[string]bool
	err := pg.WithMaintenance(ctx, opts, func(m *sql.DB) error {
		if err := AdminRole(ctx, m, strategy.SingleSchema, SingleSchemaAdminWhy); err != nil {
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
	pool, err := pg.OpenPool(opts.AdminDSN(opts.Database), 2, 2)
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
	if err := checkMigrations(ctx, pool, opts.Database, ssmigrations.FS(), &rep); err != nil {
		return rep, err
	}
	if err := checkCounts(ctx, pool, opts.Database, singleSchemaCounts(), &rep); err != nil {
		return rep, err
	}
	if roles[opts.AppUser] {
		if err := checkShardGrants(ctx, pool, opts.Database, opts.AppUser, &rep); err != nil {
			return rep, err
		}
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
