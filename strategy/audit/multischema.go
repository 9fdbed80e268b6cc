package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"tenancy/strategy"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pg"
	msmigrations "tenancy/strategy/multischema/migrations"
)

// multischema: what keeps tenants apart is that a tenant's tables are in
// its own schema, reachable only by its own role, and that the app role
// reaches none of them itself: it takes on one tenant's role for one
// transaction at a time, which it can only do because it is a member of
// them all, NOINHERIT, so that membership gives it nothing by itself.

// tenantSchemaPattern is the name of the schemas multischema makes for
// tenants: tenant_<account id>.
const tenantSchemaPattern = `^tenant_[0-9]+$`

// tenantRoleGrants are what a tenant's role needs of its schema.
func tenantRoleGrants() map[string][]string {
	rw := []string{"SELECT", insertNotIDs, updateNotIDs, "DELETE"}
	return map[string][]string{"users": rw, "projects": rw, "tasks": rw, "subtasks": rw, "subtask_counts": {"SELECT"}}
}

// MultiSchemaServer is what a multischema server checks at start beyond
// its app role's attributes (RuntimeRole), from its own sessions (app and
// reader are pools of the app role and the reader): see
// auditMultiSchemaApp and auditMultiSchemaReader. The tenants' schemas and
// roles are checked one by one as the server first serves each
// (MultiSchemaTenant).
func MultiSchemaServer(ctx context.Context, app, reader *sql.DB, opts strategy.Options) error {
	fs, err := auditMultiSchemaApp(ctx, app, opts.Database, "", opts)
	if err != nil {
		return fmt.Errorf("check the server's database role: %w", err)
	}
	f, err := readRoleFacts(ctx, reader, "")
	if err != nil {
		return fmt.Errorf("check the all-tenants database role: %w", err)
	}
	fs = append(fs, multiSchemaReaderFindings(f)...)
	more, err := auditMultiSchemaReader(ctx, reader, opts.Database, "", opts)
	if err != nil {
		return fmt.Errorf("check the all-tenants database role: %w", err)
	}
	return unsafeDeployment(append(fs, more...))
}

// tenantSchemas lists the tenant schemas that exist.
func tenantSchemas(ctx context.Context, q Querier) ([]string, error) {
	return stringColumn(ctx, q, `SELECT nspname FROM pg_namespace WHERE nspname ~ $1 ORDER BY 1`, tenantSchemaPattern)
}

// auditMultiSchemaApp lists what the app role could reach beyond what the
// server needs: its membership of the tenants' roles must not give it
// their privileges (NOINHERIT), it may use no tenant's schema itself, and
// it needs no privilege on any table of public (it reads and writes only as
// a tenant's role, and looks tenants up through the reader); then what
// auditDatabase finds. role empty means the connected role.
func auditMultiSchemaApp(ctx context.Context, q Querier, database, role string, opts strategy.Options) ([]Finding, error) {
	schemas, err := tenantSchemas(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list the tenants' schemas: %w", err)
	}
	var user string
	var super, inherits bool
	var reach, tables string
	err = q.QueryRowContext(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolinherit,
		       coalesce((SELECT string_agg(n.nspname, ', ' ORDER BY n.nspname) FROM pg_namespace n
		                 WHERE n.nspname ~ $2 AND has_schema_privilege(r.oid, n.oid, 'USAGE')), ''),
		       coalesce((SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c
		                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
		                   AND c.relname <> ALL ($3)
		                   AND (has_any_column_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
		                        OR has_table_privilege(r.oid, c.oid, 'DELETE, TRUNCATE, TRIGGER'))), '')
		FROM pg_roles r WHERE r.rolname = coalesce(nullif($1, ''), current_user)`, role, tenantSchemaPattern, slices.Collect(maps.Keys(operators.AppGrants()))).
		Scan(&user, &super, &inherits, &reach, &tables)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: %q", errRoleMissing, role)
		}
		return nil, fmt.Errorf("read what role %q may use: %w", role, pg.Classify(err))
	}
	if super {
		return nil, nil // roleAttributeFindings says it all
	}
	subject := fmt.Sprintf("role %q", user)
	var out []Finding
	if inherits {
		out = append(out, Finding{Kind: FindingRoleInherits, Subject: subject,
			Problem: "it inherits the privileges of the roles it is a member of, every tenant's among them, so it may use every tenant's schema without taking a tenant on",
			Fix:     fmt.Sprintf("run ALTER ROLE %s NOINHERIT (`tenancy setup` does)", pg.QuoteIdent(user))})
	}
	if reach != "" {
		out = append(out, Finding{Kind: FindingTenantSchemaReach, Database: database, Subject: subject,
			Problem: "it may use the schema of " + reach + " without taking that tenant on, so a query that forgets the tenant reads it",
			Fix:     fmt.Sprintf("revoke it (REVOKE USAGE ON SCHEMA <schema> FROM %s); `tenancy migrate` grants exactly what is needed", pg.QuoteIdent(user))})
	}
	if tables != "" {
		out = append(out, Finding{Kind: FindingExtraGrant, Database: database, Subject: subject,
			Problem: "it has privileges on " + tables + " in public, where it needs none: it reads and writes only as a tenant's role",
			Fix:     fmt.Sprintf("revoke them (REVOKE ALL ON <table> FROM %s); `tenancy migrate` grants exactly what is needed", pg.QuoteIdent(user))})
	}
	// The operators' tables are the app role's only ones in public, read
	// and written as itself: exactly what sign-in and sign-out need.
	privs, err := tablePrivileges(ctx, q, role, "public")
	if err != nil {
		return nil, err
	}
	ops := map[string][]string{}
	for t := range operators.AppGrants() {
		if p, ok := privs[t]; ok {
			ops[t] = p
		}
	}
	out = append(out, grantFindings(database, user, false, operators.AppGrants(), ops, nil)...)
	more, err := auditDatabase(ctx, q, auditTarget{database: database, role: role, admin: opts.AdminUser, counter: opts.CountsOwner(),
		schemas: append([]string{"public"}, schemas...)})
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

// multiSchemaReaderFindings are the reader's attributes: read-only by
// default, and none of those that reach past the database. It needs no
// BYPASSRLS: there is no row-level security to bypass, only grants.
func multiSchemaReaderFindings(f roleFacts) []Finding {
	out := roleAttributeFindings(f, true)
	if !f.readOnly {
		out = append(out, Finding{Kind: FindingReaderNotReadOnly, Subject: fmt.Sprintf("role %q", f.user),
			Problem: "its transactions are not read-only by default",
			Fix:     fmt.Sprintf("run ALTER ROLE %s SET default_transaction_read_only = on", pg.QuoteIdent(f.user))})
	}
	return out
}

// auditMultiSchemaReader is what the all-tenants reader may reach: SELECT
// on the directory and the totals in public, and on what the all-tenants
// list reads in each tenant's schema (not users: no password hashes), and
// nothing else; then what auditDatabase finds.
func auditMultiSchemaReader(ctx context.Context, q Querier, database, role string, opts strategy.Options) ([]Finding, error) {
	fs, err := auditDatabase(ctx, q, auditTarget{database: database, role: role, noForeign: true, admin: opts.AdminUser, counter: opts.CountsOwner()})
	if err != nil {
		return nil, err
	}
	name := role
	if name == "" {
		name = opts.ReaderUser
	}
	// The accounts' schemas: one without an account is reported as such
	// (checkTenantSchemas), not for what the reader lacks in it.
	schemas, err := stringColumn(ctx, q, `SELECT n.nspname FROM public.accounts a
		JOIN pg_namespace n ON n.nspname = 'tenant_' || a.id ORDER BY a.id`)
	if err != nil {
		return nil, fmt.Errorf("list the tenants' schemas: %w", err)
	}
	privs, err := schemaPrivileges(ctx, q, role, append([]string{"public"}, schemas...))
	if err != nil {
		return nil, err
	}
	if privs == nil {
		return fs, nil // a superuser: roleAttributeFindings says it
	}
	fs = append(fs, grantFindings(database, name, true, onlyThese(readerGrants("accounts", "tenant_totals"), privs["public"]), privs["public"], nil)...)
	want := readerGrants("projects", "tasks", "subtasks", "subtask_counts")
	for _, s := range schemas {
		fs = append(fs, grantFindings(database+"."+s, name, true, want, privs[s], nil)...)
	}
	return fs, nil
}

// onlyThese is want, and no privilege on every other table of privs:
// in public, a multischema role needs what want says and nothing else.
func onlyThese(want, privs map[string][]string) map[string][]string {
	out := maps.Clone(want)
	for t := range privs {
		if _, ok := out[t]; !ok {
			out[t] = nil
		}
	}
	return out
}

// schemaPrivileges is tablePrivileges for several schemas in one query,
// by schema then table; nil for a superuser.
func schemaPrivileges(ctx context.Context, q Querier, role string, schemas []string) (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{}
	for _, s := range schemas {
		privs, err := tablePrivileges(ctx, q, role, s)
		if err != nil || privs == nil {
			return nil, err
		}
		out[s] = privs
	}
	return out, nil
}

// MultiSchemaTenant is what a multischema server checks of one tenant
// before it serves the tenant for the first time, from the app role's own
// session: see auditTenantSchema. The error wraps ErrUnsafeDeployment and
// lists the findings.
func MultiSchemaTenant(ctx context.Context, app *sql.DB, schema, role string, opts strategy.Options) error {
	fs, err := auditTenantSchema(ctx, app, opts.Database, schema, role, "", opts)
	if err != nil {
		return err
	}
	return unsafeDeployment(fs)
}

// auditTenantSchema checks one tenant: its schema exists and is the
// admin's; its role exists, is not one that reaches past the database,
// has app (empty: the connected role) as a member, may use no other
// tenant's schema, and holds exactly the grants the server needs in its
// schema, and SELECT on accounts in public.
func auditTenantSchema(ctx context.Context, q Querier, database, schema, role, app string, opts strategy.Options) ([]Finding, error) {
	where := database + "." + schema
	var owner sql.NullString
	var roleExists, member bool
	var reach string
	err := q.QueryRowContext(ctx, `
		SELECT (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1),
		       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2),
		       coalesce(pg_has_role(coalesce(nullif($3, ''), current_user), (SELECT oid FROM pg_roles WHERE rolname = $2), 'MEMBER'), false),
		       coalesce((SELECT string_agg(n.nspname, ', ' ORDER BY n.nspname) FROM pg_namespace n, pg_roles r
		                 WHERE r.rolname = $2 AND n.nspname ~ $4 AND n.nspname <> $1
		                   AND has_schema_privilege(r.oid, n.oid, 'USAGE')), '')`,
		schema, role, app, tenantSchemaPattern).Scan(&owner, &roleExists, &member, &reach)
	if err != nil {
		return nil, fmt.Errorf("check tenant schema %s: %w", schema, pg.Classify(err))
	}
	var out []Finding
	switch {
	case !owner.Valid:
		out = append(out, Finding{Kind: FindingSchemaMissing, Database: database, Subject: "schema " + schema,
			Problem: "it does not exist, so its tenant's pages fail (closed)",
			Fix:     "run `tenancy migrate`, which makes every account's schema"})
	case owner.String != opts.AdminUser:
		out = append(out, Finding{Kind: FindingForeignObject, Database: database, Subject: "schema " + schema,
			Problem: fmt.Sprintf("it is owned by %q, not by the admin role, and its owner can change it at will", owner.String),
			Fix:     fmt.Sprintf("after checking what it holds, run ALTER SCHEMA %s OWNER TO %s", pg.QuoteIdent(schema), pg.QuoteIdent(opts.AdminUser))})
	}
	if !roleExists {
		return append(out, roleMissing(role)), nil
	}
	f, err := readRoleFacts(ctx, q, role)
	if err != nil {
		return nil, err
	}
	out = append(out, roleAttributeFindings(f, false)...)
	if !member {
		out = append(out, Finding{Kind: FindingGrantMissing, Database: database, Subject: fmt.Sprintf("role %q", role),
			Problem: "the app role is not a member of it, so it cannot take this tenant on and the tenant's pages fail",
			Fix:     "run `tenancy migrate`"})
	}
	if reach != "" {
		out = append(out, Finding{Kind: FindingTenantSchemaReach, Database: database, Subject: fmt.Sprintf("role %q", role),
			Problem: "this tenant's role may use the schema of " + reach + ", another tenant's, so its queries can read that tenant's rows",
			Fix:     fmt.Sprintf("revoke it (REVOKE USAGE ON SCHEMA <schema> FROM %s); `tenancy migrate` grants exactly what is needed", pg.QuoteIdent(role))})
	}
	if !owner.Valid {
		return out, nil
	}
	privs, err := schemaPrivileges(ctx, q, role, []string{"public", schema})
	if err != nil || privs == nil {
		return out, err
	}
	out = append(out, grantFindings(database, role, false, onlyThese(readerGrants("accounts"), privs["public"]), privs["public"], nil)...)
	out = append(out, grantFindings(where, role, false, tenantRoleGrants(), privs[schema], nil)...)
	more, err := auditDatabase(ctx, q, auditTarget{database: database, role: role, noForeign: true, admin: opts.AdminUser, counter: opts.CountsOwner()})
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

// CheckMultiSchema inspects the multischema deployment described by opts
// as the admin role (PGUSER): the app role (NOINHERIT, no tenant schema of
// its own, no grants in public) and the reader; then, for every account,
// its schema, role and grants (auditTenantSchema), its pending migrations
// and kept counts, several at a time; schemas with no account; and a probe,
// as the app role in a rolled-back transaction, that with no tenant it
// resolves no tenant table and, as one tenant, another tenant's schema is
// refused.
func CheckMultiSchema(ctx context.Context, opts strategy.Options) (Report, error) {
	if err := opts.Validate(); err != nil {
		return Report{}, fmt.Errorf("invalid options: %w", err)
	}
	ctx, cancel := pg.WithTimeout(ctx)
	defer cancel()
	rep := Report{Strategy: strategy.MultiSchema}
	var dbs, roles map[string]bool
	err := pg.WithMaintenance(ctx, opts, func(m *sql.DB) error {
		if err := AdminRole(ctx, m, strategy.MultiSchema, "it creates a role per tenant and makes the app role a member of each"); err != nil {
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
	pool, err := pg.OpenPool(opts.AdminDSN(opts.Database), checkWorkers, checkWorkers)
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
			return rep, err
		}
		rep.add(roleAttributeFindings(f, false)...)
		fs, err := auditMultiSchemaApp(ctx, pool, opts.Database, opts.AppUser, opts)
		if err != nil {
			return rep, err
		}
		rep.add(fs...)
		rep.checked("role %s (app): NOINHERIT, uses no tenant's schema and no table in public itself, not a superuser, no BYPASSRLS, CREATEROLE or REPLICATION, owns and creates nothing, search_path public", opts.AppUser)
	}
	if roles[opts.ReaderUser] {
		f, err := readRoleFacts(ctx, pool, opts.ReaderUser)
		if err != nil {
			return rep, err
		}
		rep.add(multiSchemaReaderFindings(f)...)
		fs, err := auditMultiSchemaReader(ctx, pool, opts.Database, opts.ReaderUser, opts)
		if err != nil {
			return rep, err
		}
		rep.add(fs...)
		rep.checked("role %s (all tenants): read-only by default, SELECT on what the all-tenants list reads and nothing else", opts.ReaderUser)
	}
	if err := checkMigrations(ctx, pool, opts.Database, msmigrations.Shared(), &rep); err != nil {
		return rep, err
	}
	if err := checkTenantSchemas(ctx, pool, opts, roles[opts.AppUser], &rep); err != nil {
		return rep, err
	}
	if roles[opts.AppUser] {
		fs, err := probeSchemas(ctx, pool, opts)
		if err != nil {
			return rep, fmt.Errorf("probe the tenant schemas as %q: %w", opts.AppUser, err)
		}
		rep.add(fs...)
	}
	return rep, nil
}

// account is a tenant's id and slug.
type account struct {
	id   int64
	slug string
}

func readAccounts(ctx context.Context, db *sql.DB) ([]account, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, slug FROM public.accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", pg.Classify(err))
	}
	defer rows.Close()
	var out []account
	for rows.Next() {
		var a account
		if err := rows.Scan(&a.id, &a.slug); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// checkTenantSchemas checks every account's schema, several at a time, and
// every tenant schema without an account.
func checkTenantSchemas(ctx context.Context, pool *sql.DB, opts strategy.Options, appExists bool, rep *Report) error {
	accounts, err := readAccounts(ctx, pool)
	if err != nil {
		return err
	}
	results := make([]Report, len(accounts))
	errs := make([]error, len(accounts))
	pg.ForEachIndex(len(accounts), checkWorkers, func(i int) {
		errs[i] = checkTenantSchema(ctx, pool, opts, accounts[i], appExists, &results[i])
	})
	for _, r := range results {
		rep.add(r.Findings...)
	}
	if err := pg.FirstErrors(errs); err != nil {
		return fmt.Errorf("check the tenants' schemas: %w", err)
	}
	rep.checked("%d tenant schemas: present, the admin's, migrated, counts kept; each tenant's role uses its own schema only, with exactly the grants the server needs", len(accounts))
	schemas, err := tenantSchemas(ctx, pool)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, a := range accounts {
		known[schemaName(a.id)] = true
	}
	for _, s := range schemas {
		if !known[s] {
			rep.add(Finding{Kind: FindingForeignSchema, Database: opts.Database, Subject: "schema " + s,
				Problem: "it looks like a tenant's schema but no account has its id, so nothing checks or migrates it, and a new account with that id would find its rows",
				Fix:     fmt.Sprintf("look at what it holds, then drop it (DROP SCHEMA %s CASCADE)", pg.QuoteIdent(s))})
		}
	}
	return nil
}

func schemaName(id int64) string { return "tenant_" + strconv.FormatInt(id, 10) }

func tenantRoleName(opts strategy.Options, id int64) string {
	return opts.Database + "_t" + strconv.FormatInt(id, 10)
}

// checkTenantSchema checks one account's schema (see auditTenantSchema),
// its migrations and its kept counts.
func checkTenantSchema(ctx context.Context, pool *sql.DB, opts strategy.Options, a account, appExists bool, rep *Report) error {
	schema := schemaName(a.id)
	app := opts.AppUser
	if !appExists {
		app = opts.AdminUser
	}
	fs, err := auditTenantSchema(ctx, pool, opts.Database, schema, tenantRoleName(opts, a.id), app, opts)
	if err != nil {
		return err
	}
	rep.add(fs...)
	for _, f := range fs {
		if f.Kind == FindingSchemaMissing {
			return nil
		}
	}
	if err := checkMigrationsIn(ctx, pool, opts.Database+"."+schema, msmigrations.Tenant(), schema+".goose_db_version", rep); err != nil {
		return err
	}
	var kept, total, counted sql.NullInt64
	err = pool.QueryRowContext(ctx, fmt.Sprintf(`SELECT (SELECT subtasks FROM %[1]s.subtask_counts WHERE account_id = $1),
		(SELECT subtasks FROM public.tenant_totals WHERE account_id = $1), (SELECT count(*) FROM %[1]s.subtasks)`, pg.QuoteIdent(schema)), a.id).
		Scan(&kept, &total, &counted)
	if err != nil {
		if pg.IsPgError(err, "42P01") {
			return nil // pending migrations, reported above
		}
		return fmt.Errorf("compare the counts of %s: %w", schema, pg.Classify(err))
	}
	if kept.Int64 != counted.Int64 || total.Int64 != counted.Int64 || !kept.Valid || !total.Valid {
		s := pg.QuoteIdent(schema)
		rep.add(Finding{Kind: FindingCountsDrifted, Database: opts.Database + "." + schema, Subject: "table " + schema + ".subtask_counts",
			Problem: fmt.Sprintf("account %s has %d subtasks, but its kept count is %v and its line in public.tenant_totals %v, so its list and the all-tenants list show wrong totals", a.slug, counted.Int64, nullable(kept), nullable(total)),
			Fix: fmt.Sprintf("recount them as the admin (psql): BEGIN; LOCK TABLE %[1]s.subtasks IN SHARE MODE; "+
				"INSERT INTO %[1]s.subtask_counts (account_id, subtasks) SELECT %[2]d, count(*) FROM %[1]s.subtasks ON CONFLICT (account_id) DO UPDATE SET subtasks = excluded.subtasks; "+
				"INSERT INTO public.tenant_totals (account_id, subtasks) SELECT %[2]d, count(*) FROM %[1]s.subtasks ON CONFLICT (account_id) DO UPDATE SET subtasks = excluded.subtasks; COMMIT;", s, a.id)})
	}
	return nil
}

func nullable(v sql.NullInt64) string {
	if !v.Valid {
		return "missing"
	}
	return strconv.FormatInt(v.Int64, 10)
}

// probeSchemas tries, as the app role in a transaction that is rolled
// back, what the grants must refuse: with no tenant taken on, reading
// subtasks by name and in a tenant's schema; as one tenant, reading
// another's schema (the first and the last tenant, each way).
func probeSchemas(ctx context.Context, pool *sql.DB, opts strategy.Options) ([]Finding, error) {
	accounts, err := readAccounts(ctx, pool)
	if err != nil {
		return nil, err
	}
	var out []Finding
	err = pg.InTx(ctx, pool, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+pg.QuoteIdent(opts.AppUser)); err != nil {
			return err
		}
		try := func(query string) (bool, error) {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT tenancy_probe"); err != nil {
				return false, err
			}
			_, stmtErr := tx.ExecContext(ctx, query)
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT tenancy_probe"); err != nil {
				return false, err
			}
			return stmtErr == nil, nil
		}
		queries := []string{"SELECT count(*) FROM subtasks"}
		for _, a := range accounts {
			queries = append(queries, "SELECT count(*) FROM "+pg.QuoteIdent(schemaName(a.id))+".subtasks")
			break
		}
		for _, q := range queries {
			reached, err := try(q)
			if err != nil {
				return err
			}
			if reached {
				out = append(out, Finding{Kind: FindingPolicyOpenWithoutTenant, Database: opts.Database, Subject: fmt.Sprintf("role %q", opts.AppUser),
					Problem: "with no tenant taken on, it could run " + q,
					Fix:     "the app role must be NOINHERIT, use no tenant schema itself, and its search_path must be public: `tenancy migrate` makes it so"})
			}
		}
		if len(accounts) < 2 {
			return nil
		}
		first, last := accounts[0], accounts[len(accounts)-1]
		for _, pair := range [][2]account{{first, last}, {last, first}} {
			if _, err := tx.ExecContext(ctx, `SELECT set_config('role', $1, true), set_config('search_path', $2, true)`,
				tenantRoleName(opts, pair[0].id), pg.QuoteIdent(schemaName(pair[0].id))+", public"); err != nil {
				return fmt.Errorf("take on %s: %w", pair[0].slug, err)
			}
			q := "SELECT count(*) FROM " + pg.QuoteIdent(schemaName(pair[1].id)) + ".subtasks"
			reached, err := try(q)
			if err != nil {
				return err
			}
			if reached {
				out = append(out, Finding{Kind: FindingTenantSchemaReach, Database: opts.Database, Subject: "role " + strconv.Quote(tenantRoleName(opts, pair[0].id)),
					Problem: fmt.Sprintf("as tenant %s, it could run %s, another tenant's rows", pair[0].slug, q),
					Fix:     "revoke the other schema's USAGE from the tenant's role (and from PUBLIC); `tenancy migrate` grants exactly what is needed"})
			}
			if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+pg.QuoteIdent(opts.AppUser)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, pg.Classify(err)
	}
	return out, nil
}
