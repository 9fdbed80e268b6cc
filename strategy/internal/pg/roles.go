package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"tenancy/strategy"
)

// RoleSpec describes a role that setup creates when missing.
type RoleSpec struct {
	Name, Password string
	// bypassRLS is set only for the all-tenants reader, which also gets
	// only SELECT and read-only transactions.
	BypassRLS bool
	// noLogin is set for the role that owns the count triggers: nobody
	// connects as it, its rights are reached only through them.
	NoLogin bool
	// NoInherit: the role gets none of the privileges of the roles it is
	// a member of until it takes one on with SET ROLE (multischema's app
	// role, a member of every tenant's role).
	NoInherit bool
}

// EnsureRole creates the role when it is missing, and refuses an existing
// role whose attributes would break isolation rather than silently changing
// someone else's role.
func EnsureRole(ctx context.Context, db *sql.DB, r RoleSpec) (created bool, err error) {
	var super, bypass, createRole, replication bool
	err = db.QueryRowContext(ctx, `SELECT rolsuper, rolbypassrls, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = $1`, r.Name).
		Scan(&super, &bypass, &createRole, &replication)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		bypass, login := "NOBYPASSRLS", "LOGIN"
		if r.BypassRLS {
			bypass = "BYPASSRLS"
		}
		if r.NoLogin {
			login = "NOLOGIN"
		}
		stmt := fmt.Sprintf("CREATE ROLE %s %s NOSUPERUSER %s NOCREATEDB NOCREATEROLE NOREPLICATION", QuoteIdent(r.Name), login, bypass)
		if r.NoInherit {
			stmt += " NOINHERIT"
		}
		if r.Password != "" && !r.NoLogin {
			stmt += " PASSWORD " + QuoteLiteral(r.Password)
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil && !IsPgError(err, "42710") { // 42710: created meanwhile
			return false, fmt.Errorf("create role %q: %w", r.Name, err)
		}
		created = true
	case err != nil:
		return false, fmt.Errorf("look up role %q: %w", r.Name, err)
	case super:
		return false, fmt.Errorf("%w: role %q is a superuser, so row-level security does not apply to it; run ALTER ROLE %s NOSUPERUSER, or choose another role name", strategy.ErrUnsafeRole, r.Name, QuoteIdent(r.Name))
	case bypass && !r.BypassRLS:
		return false, fmt.Errorf("%w: role %q has BYPASSRLS; run ALTER ROLE %s NOBYPASSRLS, or choose another role name", strategy.ErrUnsafeRole, r.Name, QuoteIdent(r.Name))
	case createRole || replication:
		return false, fmt.Errorf("%w: role %q has CREATEROLE or REPLICATION, with which it could grant itself other roles or read every tenant's rows from the server's log stream; run ALTER ROLE %s NOCREATEROLE NOREPLICATION, or choose another role name",
			strategy.ErrUnsafeRole, r.Name, QuoteIdent(r.Name))
	default:
		if r.Password != "" && !r.NoLogin {
			if _, err := db.ExecContext(ctx, fmt.Sprintf("ALTER ROLE %s PASSWORD %s", QuoteIdent(r.Name), QuoteLiteral(r.Password))); err != nil {
				return false, fmt.Errorf("set password of role %q: %w", r.Name, err)
			}
		}
	}
	if r.NoInherit {
		// Taking privileges away from a role is safe whoever made it.
		if _, err := db.ExecContext(ctx, "ALTER ROLE "+QuoteIdent(r.Name)+" NOINHERIT"); err != nil {
			return created, fmt.Errorf("make role %q NOINHERIT: %w", r.Name, err)
		}
	}
	if r.BypassRLS {
		// The all-tenants role can read everything, so it can write nothing.
		if _, err := db.ExecContext(ctx, fmt.Sprintf("ALTER ROLE %s SET default_transaction_read_only = on", QuoteIdent(r.Name))); err != nil {
			return created, fmt.Errorf("make role %q read-only: %w", r.Name, err)
		}
	}
	if r.NoLogin {
		// A non-superuser admin (multidb needs only CREATEDB and
		// CREATEROLE) must be a member to hand the count functions to it.
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`DO $$ BEGIN
			IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
				EXECUTE format('GRANT %%I TO %%I', %s, current_user);
			END IF; END $$`, QuoteLiteral(r.Name))); err != nil {
			return created, fmt.Errorf("make the admin a member of role %q: %w", r.Name, err)
		}
	}
	return created, nil
}

// EnsureDatabase creates database name, owned by the connected admin role,
// when it is missing.
func EnsureDatabase(ctx context.Context, db *sql.DB, name string) (created bool, err error) {
	return EnsureDatabaseFrom(ctx, db, name, "")
}

// EnsureDatabaseFrom is EnsureDatabase copying template (if not empty)
// instead of the pristine template0. A database that exists already is
// adopted only if the admin owns it: one created beforehand by another role
// may hold that role's schemas and objects (a schema named after the app
// role comes first on its default search_path), and its owner may change
// it at will.
func EnsureDatabaseFrom(ctx context.Context, db *sql.DB, name, template string) (created bool, err error) {
	var owner sql.NullString
	var mine bool
	err = db.QueryRowContext(ctx, `SELECT pg_get_userbyid(datdba), datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)
		FROM pg_database WHERE datname = $1`, name).Scan(&owner, &mine)
	switch {
	case err == nil && !mine:
		return false, fmt.Errorf("%w: database %q exists and is owned by %q, not by the admin role: setup adopts only databases it created; drop it, or choose another PGDATABASE",
			strategy.ErrUnsafeDeployment, name, owner.String)
	case err == nil:
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("look up database %q: %w", name, err)
	}
	if template == "" {
		// Not template1, which anyone with rights on it may have filled.
		template = "template0"
	}
	stmt := "CREATE DATABASE " + QuoteIdent(name) + " TEMPLATE " + QuoteIdent(template)
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		if IsPgError(err, "42P04") { // created meanwhile
			return EnsureDatabaseFrom(ctx, db, name, template)
		}
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
	return true, nil
}

// GrantSpec says who gets what on one migrated database.
type GrantSpec struct {
	Database string
	// App serves tenants; Reader (singleschema only) serves the all-tenants
	// view; Counter owns the count triggers.
	App, Reader, Counter string
	// CounterReadsAccounts: multidb's count trigger reads the database's
	// one account.
	CounterReadsAccounts bool
	// RLS: the counts table has row-level security (singleschema), so the
	// counter needs a policy of its own to write every tenant's count.
	RLS bool
	// Citus: the database is a Citus coordinator with the tables
	// distributed, or about to be; the runtime roles then plan every
	// statement for its values (see CitusRoleSettings).
	Citus bool
	// ShardIDs (with Citus): tables whose shards, not the tables
	// themselves, let App insert their id column, which Citus fills in on
	// the coordinator (ShardGrantTables). The REVOKE ALL below reaches
	// the shards of a distributed table and takes that grant away there
	// too, so it is made again on them in the same transaction (see
	// grantShardIDs): a server never sees a shard without it.
	ShardIDs []string
	// Also are run after the grants, in their transaction: grants on
	// tables that are not the tenants' (the operators'), which the
	// REVOKE ALL above would otherwise take away in between.
	Also []string
}

// RoleSettings are the session defaults setup gives the runtime roles in
// each database. search_path leaves out "$user": a schema named after the
// role, created by anyone with CREATE on the database, would otherwise
// come first and shadow the tables. lock_timeout makes a request that
// waits behind an ACCESS EXCLUSIVE lock (a migration, or a LOCK TABLE by
// someone holding this role's password) give up with a 503 rather than
// queue for the whole request; an abandoned transaction holding locks is
// ended after idle_in_transaction_session_timeout. The server runs a few
// statements over and over, each keyed by a tenant id and read through
// an index, so one generic plan per connection serves every tenant: left
// to choose, PostgreSQL kept planning the list page afresh on every
// execution (a custom plan, ~0.9 ms of planning against ~0.3 ms of
// execution), because the generic plan's estimate looked no cheaper.
func RoleSettings() [][2]string {
	return [][2]string{
		{"search_path", "public"},
		{"plan_cache_mode", "force_generic_plan"},
		{"lock_timeout", "5s"},
		{"idle_in_transaction_session_timeout", "1min"},
	}
}

// CitusRoleSettings are RoleSettings for a Citus coordinator: Citus finds
// the one worker a tenant's statement goes to from the tenant id in it,
// which a generic plan does not have ("could not create distributed
// plan" for the page's join), so each execution is planned for its
// values. A statement over every tenant (the all-tenants view's counts,
// the report) is a task per shard: by default Citus opens up to 16
// connections to a worker to run them at once, then closes all but one
// when the statement ends, so every such read opened worker connections
// afresh (140 in 5 s for the counts alone, docs/citus.md). Two, kept
// open, read the counts faster and open none once warm.
func CitusRoleSettings() [][2]string {
	out := RoleSettings()
	for i, s := range out {
		if s[0] == "plan_cache_mode" {
			out[i][1] = "force_custom_plan"
		}
	}
	return append(out,
		[2]string{"citus.max_adaptive_executor_pool_size", "2"},
		[2]string{"citus.max_cached_conns_per_worker", "2"})
}

// Grants gives the roles exactly what they need on a migrated database,
// and takes away anything else they were given there: PUBLIC's default
// rights to connect and to create temporary objects included. It is
// idempotent and runs in one transaction, so setup and migrate both run
// it, and a running server never sees the grants half-made.
func Grants(ctx context.Context, db *sql.DB, g GrantSpec) error {
	app, counter := QuoteIdent(g.App), QuoteIdent(g.Counter)
	runtime := app
	if g.Reader != "" {
		runtime += ", " + QuoteIdent(g.Reader)
	}
	database := QuoteIdent(g.Database)
	stmts := []string{
		// Temporary objects come first on a search_path that does not
		// list pg_temp: a role that may create them can shadow what a
		// careless function names.
		"REVOKE ALL ON DATABASE " + database + " FROM PUBLIC",
		"REVOKE ALL ON DATABASE " + database + " FROM " + runtime + ", " + counter,
		"GRANT CONNECT ON DATABASE " + database + " TO " + runtime,
		"REVOKE ALL ON SCHEMA public FROM PUBLIC",
		"REVOKE ALL ON SCHEMA public FROM " + runtime + ", " + counter,
		"GRANT USAGE ON SCHEMA public TO " + runtime + ", " + counter,
		"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM " + runtime + ", " + counter,
		"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM " + runtime + ", " + counter,
		// Accounts are created by the admin (seed, sign-up), never by a
		// tenant; the counts are kept by the triggers, so no tenant code
		// path can change one. Ids come from identity columns, which need
		// no rights on their sequences.
		"GRANT SELECT ON accounts, subtask_counts TO " + app,
		// INSERT and UPDATE of every column but the ids: see writableColumns.
		"GRANT SELECT, DELETE ON users, projects, tasks, subtasks TO " + app,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON subtask_counts TO " + counter,
		// The server reads the schema's version to tell a database still
		// being upgraded (pg.RequireCurrent); no tenant's rows are there.
		"GRANT SELECT ON goose_db_version TO " + app,
		// The count functions go to a role that can do nothing else. A new
		// owner needs CREATE on the schema unless a superuser hands them
		// over; it has it only for as long as that takes.
		"GRANT CREATE ON SCHEMA public TO " + counter,
		"ALTER FUNCTION public.subtask_counts_apply() OWNER TO " + counter,
		"ALTER FUNCTION public.subtask_counts_clear() OWNER TO " + counter,
		"REVOKE CREATE ON SCHEMA public FROM " + counter,
	}
	if g.Reader != "" {
		// Everything the all-tenants pages read; not users, whose password
		// hashes it has no use for.
		stmts = append(stmts, "GRANT SELECT ON accounts, projects, tasks, subtasks, subtask_counts TO "+QuoteIdent(g.Reader))
	}
	if g.CounterReadsAccounts {
		stmts = append(stmts, "GRANT SELECT ON accounts TO "+counter)
	}
	for _, role := range []string{g.App, g.Reader} {
		if role == "" {
			continue
		}
		settings := RoleSettings()
		if g.Citus {
			settings = CitusRoleSettings()
		}
		for _, s := range settings {
			stmts = append(stmts, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET %s = %s", QuoteIdent(role), database, s[0], QuoteLiteral(s[1])))
		}
	}
	return WithTx(ctx, db, func(tx *sql.Tx) error {
		for _, table := range []string{"users", "projects", "tasks", "subtasks"} {
			cols, err := WritableColumns(ctx, tx, "public", table)
			if err != nil {
				return err
			}
			stmts = append(stmts, fmt.Sprintf("GRANT INSERT (%[1]s), UPDATE (%[1]s) ON %[2]s TO %[3]s", cols, table, app))
		}
		for _, s := range append(stmts, g.Also...) {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("grant (%s): %w", s, err)
			}
		}
		if g.RLS {
			if err := ensureCounterPolicy(ctx, tx, g.Counter); err != nil {
				return err
			}
		}
		if g.Citus && len(g.ShardIDs) > 0 {
			return grantShardIDs(ctx, tx, g.App, g.ShardIDs)
		}
		return nil
	})
}

// WritableColumns lists, quoted, the columns of schema.table the app role
// may insert and update: all but the identity columns. Ids are shared by every tenant in
// one schema; INSERT ... OVERRIDING SYSTEM VALUE lets any role with
// INSERT on an identity column pick one, GENERATED ALWAYS or not. Read from
// the catalog on every migrate, so a column a later migration adds is
// writable too.
func WritableColumns(ctx context.Context, tx *sql.Tx, schema, table string) (string, error) {
	var cols string
	err := tx.QueryRowContext(ctx, `
		SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) AND attnum > 0 AND NOT attisdropped AND attidentity = ''`, schema, table).Scan(&cols)
	if err != nil {
		return "", fmt.Errorf("list the columns of %s: %w", table, err)
	}
	return cols, nil
}

// ensureCounterPolicy lets the count triggers, running as counter, write
// any tenant's count: they count only rows that the subtasks' own policies
// let through, and seeding writes many tenants at once with no tenant set.
// The policy is made (or pointed at counter) only when it is not so
// already: ALTER POLICY locks the table.
func ensureCounterPolicy(ctx context.Context, tx *sql.Tx, counter string) error {
	var exists, right bool
	err := tx.QueryRowContext(ctx, `
		SELECT count(*) > 0, coalesce(bool_and(p.polroles = ARRAY[(SELECT oid FROM pg_roles WHERE rolname = $1)]), false)
		FROM pg_policy p WHERE p.polrelid = 'public.subtask_counts'::regclass AND p.polname = 'counts_keeper'`, counter).Scan(&exists, &right)
	if err != nil {
		return fmt.Errorf("look up the counts policy: %w", err)
	}
	var stmt string
	switch {
	case !exists:
		stmt = "CREATE POLICY counts_keeper ON public.subtask_counts TO " + QuoteIdent(counter) + " USING (true) WITH CHECK (true)"
	case !right:
		stmt = "ALTER POLICY counts_keeper ON public.subtask_counts TO " + QuoteIdent(counter)
	default:
		return nil
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// Relations are a schema's tables and sequences, quoted and qualified,
// each table's writable columns (see WritableColumns) by its bare name,
// and every role but the owners granted anything on the schema, on one of
// them or on one of their columns (PUBLIC included), quoted.
type Relations struct {
	Tables, Sequences []string
	Writable          map[string]string
	Grantees          []string
}

// SchemaRelationsSQL is a query for the relations (as objid) of the schema
// named by the text parameter param. It reads pg_depend, indexed by
// schema, rather than all of pg_class (as REVOKE ... IN SCHEMA does): with
// a schema per tenant the catalog holds tens of thousands of tables, and
// a schema's are wanted once per tenant. public is read from pg_class:
// before PostgreSQL 15 it was pinned, and nothing in it recorded a
// dependency on it.
func SchemaRelationsSQL(param string) string {
	return `SELECT objid FROM pg_depend WHERE classid = 'pg_class'::regclass AND refclassid = 'pg_namespace'::regclass
		AND refobjid = to_regnamespace(quote_ident(` + param + `)) AND deptype = 'n'
		UNION SELECT oid FROM pg_class WHERE ` + param + ` = 'public' AND relnamespace = 'public'::regnamespace`
}

// SchemaRelations lists schema's tables (views and foreign tables
// included) and sequences (see SchemaRelationsSQL).
func SchemaRelations(ctx context.Context, tx *sql.Tx, schema string) (Relations, error) {
	out := Relations{Writable: map[string]string{}}
	rows, err := tx.QueryContext(ctx, `
		SELECT c.relname, c.relkind = 'S', quote_ident(n.nspname) || '.' || quote_ident(c.relname),
		       coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
		                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = ''), '')
		FROM (`+SchemaRelationsSQL("$1")+`) rels
		JOIN pg_class c ON c.oid = rels.objid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
		ORDER BY c.relname`, schema)
	if err != nil {
		return out, fmt.Errorf("list the tables of schema %s: %w", schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, qualified, cols string
		var sequence bool
		if err := rows.Scan(&name, &sequence, &qualified, &cols); err != nil {
			return out, err
		}
		if sequence {
			out.Sequences = append(out.Sequences, qualified)
			continue
		}
		out.Tables = append(out.Tables, qualified)
		out.Writable[name] = cols
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	rows.Close()
	rows, err = tx.QueryContext(ctx, `
		WITH rels AS (
			SELECT c.oid, c.relowner, c.relacl FROM (`+SchemaRelationsSQL("$1")+`) s JOIN pg_class c ON c.oid = s.objid),
		acls AS (
			SELECT nspowner AS owner, nspacl AS acl FROM pg_namespace WHERE oid = to_regnamespace(quote_ident($1))
			UNION ALL SELECT relowner, relacl FROM rels
			UNION ALL SELECT r.relowner, a.attacl FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid WHERE a.attacl IS NOT NULL)
		SELECT DISTINCT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(e.grantee)) END
		FROM acls, aclexplode(acls.acl) e WHERE e.grantee <> acls.owner ORDER BY 1`, schema)
	if err != nil {
		return out, fmt.Errorf("list the grants in schema %s: %w", schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var grantee string
		if err := rows.Scan(&grantee); err != nil {
			return out, err
		}
		out.Grantees = append(out.Grantees, grantee)
	}
	return out, rows.Err()
}
