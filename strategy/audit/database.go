package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pg"
)

// The audit assumes an attacker who holds a runtime role's password (the
// app role's, or the all-tenants reader's) and asks what that role could
// reach beyond what the server needs. Everything it reads is in the
// catalog, which the roles themselves may read: the server runs the same
// queries from its own session at start (about current_user), and `tenancy
// check` runs them as the admin about a named role.

// auditTarget is one runtime role in one database.
type auditTarget struct {
	database string // for the findings
	// role is audited; empty means the connected role.
	role string
	// noForeign leaves out the schemas and objects of other roles: they
	// are the same whichever role is audited, so one audit says it.
	noForeign bool
	// admin and counter may own objects in the strategy's schemas: the
	// admin made them, and the counts owner holds the count triggers.
	admin, counter string
	// schemas the strategy uses; any other is foreign.
	schemas []string
}

// sharedTables are tables in a tenant-data schema that hold no tenant's
// rows by design: goose's records of applied migrations.
func sharedTables() []string { return []string{"goose_db_version", operators.VersionTable} }

// auditDatabase lists what a runtime role could reach in one database
// beyond what the server needs, whichever the strategy:
//   - objects it owns (or could own): the database, a schema, a table, a
//     function; an owner can change them at will;
//   - TEMPORARY (a temporary table comes first on any search_path that
//     does not name pg_temp, so it can shadow what a function names) and
//     CREATE on the database or on a schema;
//   - SECURITY DEFINER functions it can call, or that fire on a table it
//     may write, whose search_path does not end in pg_temp; any it can call
//     directly at all (they run with their owner's rights);
//   - session settings that differ from setup's: a search_path with
//     "$user" or another schema (a schema named after the role would
//     shadow the tables), or a setting that changes the role;
//   - schemas other than the strategy's, and objects in those that belong
//     to neither the admin nor the counts owner.
func auditDatabase(ctx context.Context, q Querier, a auditTarget) ([]Finding, error) {
	var out []Finding
	var user string
	var super, temp, create bool
	var createIn string
	err := q.QueryRowContext(ctx, `
		SELECT r.rolname, r.rolsuper,
		       has_database_privilege(r.oid, current_database(), 'TEMPORARY'),
		       has_database_privilege(r.oid, current_database(), 'CREATE'),
		       coalesce((SELECT string_agg(n.nspname, ', ' ORDER BY n.nspname) FROM pg_namespace n
		                 WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
		                   AND has_schema_privilege(r.oid, n.oid, 'CREATE')), '')
		FROM pg_roles r WHERE r.rolname = coalesce(nullif($1, ''), current_user)`, a.role).Scan(&user, &super, &temp, &create, &createIn)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: %q", errRoleMissing, a.role)
		}
		return nil, fmt.Errorf("read the privileges of role %q: %w", a.role, pg.Classify(err))
	}
	if super {
		return nil, nil // a superuser may do all of it; roleAttributeFindings says so
	}
	subject := fmt.Sprintf("role %q", user)
	db := pg.QuoteIdent(a.database)
	if temp {
		out = append(out, Finding{Kind: FindingCanCreateTemp, Database: a.database, Subject: subject,
			Problem: "it may create temporary tables and functions, which come first on any search_path that does not name pg_temp: a function running with another role's rights that names a table without its schema would use the temporary one",
			Fix:     fmt.Sprintf("run REVOKE TEMPORARY ON DATABASE %s FROM PUBLIC, %s (`tenancy migrate` does)", db, pg.QuoteIdent(user))})
	}
	if create || createIn != "" {
		where := "the database"
		if createIn != "" {
			where = "schema " + createIn
			if create {
				where = "the database and schema " + createIn
			}
		}
		out = append(out, Finding{Kind: FindingCanCreate, Database: a.database, Subject: subject,
			Problem: "it may create objects in " + where + ": a schema or table of its own can shadow the tenant tables on a search_path, and objects it owns are out of the admin's hands",
			Fix:     fmt.Sprintf("revoke CREATE (REVOKE CREATE ON DATABASE %s FROM PUBLIC, %s; REVOKE CREATE ON SCHEMA <schema> FROM PUBLIC, %s)", db, pg.QuoteIdent(user), pg.QuoteIdent(user))})
	}

	// What the role, or a role it is a member of, owns, found through
	// pg_shdepend's index by owner rather than by reading every schema,
	// table and function: with a schema per tenant the catalog holds tens
	// of thousands of tables, and the server runs this for each tenant's
	// role. pg_shdepend does not record the bootstrap superuser's
	// objects; membership of a superuser is a finding of its own.
	owned, err := stringColumn(ctx, q, `
		WITH r AS (SELECT oid FROM pg_roles WHERE rolname = coalesce(nullif($1, ''), current_user)),
		d AS (SELECT classid, objid FROM pg_shdepend
		      WHERE refclassid = 'pg_authid'::regclass AND deptype = 'o'
		        AND refobjid = ANY (ARRAY(SELECT a.oid FROM pg_roles a, r WHERE pg_has_role(r.oid, a.oid, 'MEMBER')))
		        AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
		SELECT 'database ' || quote_ident(datname) FROM pg_database, r
		 WHERE datname = current_database() AND pg_has_role(r.oid, datdba, 'MEMBER')
		UNION ALL
		SELECT 'schema ' || quote_ident(n.nspname) FROM d JOIN pg_namespace n ON d.classid = 'pg_namespace'::regclass AND n.oid = d.objid
		 WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
		UNION ALL
		SELECT 'table ' || c.oid::regclass::text FROM d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
		 JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
		UNION ALL
		SELECT 'function ' || p.oid::regprocedure::text FROM d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
		 JOIN pg_namespace n ON n.oid = p.pronamespace
		 WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
		ORDER BY 1`, user)
	if err != nil {
		return nil, fmt.Errorf("read what role %q owns: %w", user, err)
	}
	if len(owned) > 0 {
		out = append(out, Finding{Kind: FindingOwnsTable, Database: a.database, Subject: subject,
			Problem: "it owns (or can become the owner of) " + strings.Join(owned, ", ") + ", so it could turn row-level security off, or change or drop them",
			Fix:     "give them back to the admin role (ALTER ... OWNER TO <PGUSER>) and revoke any membership of their owner"})
	}

	definers, err := auditDefiners(ctx, q, a.database, user)
	if err != nil {
		return nil, err
	}
	out = append(out, definers...)

	var login bool
	if err := q.QueryRowContext(ctx, `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, user).Scan(&login); err != nil {
		return nil, fmt.Errorf("read role %q: %w", user, pg.Classify(err))
	}
	if login {
		// Settings apply at login only: SET ROLE loads none, so those of a
		// role nobody logs in as (multischema's tenants') change nothing.
		settings, err := auditRoleSettings(ctx, q, a.database, user)
		if err != nil {
			return nil, err
		}
		out = append(out, settings...)
	}

	foreign, err := auditForeignObjects(ctx, q, a)
	if err != nil {
		return nil, err
	}
	return append(out, foreign...), nil
}

// auditDefiners finds the SECURITY DEFINER functions role can reach.
func auditDefiners(ctx context.Context, q Querier, database, role string) ([]Finding, error) {
	rows, err := q.QueryContext(ctx, `
		WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1)
		SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner),
		       coalesce((SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'), ''),
		       p.prorettype <> 'trigger'::regtype AND has_function_privilege(r.oid, p.oid, 'EXECUTE'),
		       EXISTS (SELECT 1 FROM pg_trigger tg WHERE tg.tgfoid = p.oid AND NOT tg.tgisinternal
		                 AND has_table_privilege(r.oid, tg.tgrelid, 'INSERT, UPDATE, DELETE, TRUNCATE'))
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, r
		WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1`, role)
	if err != nil {
		return nil, fmt.Errorf("list SECURITY DEFINER functions: %w", pg.Classify(err))
	}
	defer rows.Close()
	subject := fmt.Sprintf("role %q", role)
	var out []Finding
	for rows.Next() {
		var fn, owner, path string
		var callable, fired bool
		if err := rows.Scan(&fn, &owner, &path, &callable, &fired); err != nil {
			return nil, err
		}
		if callable {
			out = append(out, Finding{Kind: FindingDefinerCallable, Database: database, Subject: "function " + fn,
				Problem: fmt.Sprintf("%s may call it, and it runs with the rights of %q (SECURITY DEFINER): whatever it returns or changes is out of reach of the caller's row-level security", subject, owner),
				Fix:     fmt.Sprintf("revoke it (REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %s), or make it SECURITY INVOKER", fn, pg.QuoteIdent(role))})
		}
		if (callable || fired) && !endsWithPgTemp(path) {
			how := "may call it"
			if !callable {
				how = "fires it by writing to a table"
			}
			problem := fmt.Sprintf("%s %s; it runs with the rights of %q and its search_path (%s) does not end with pg_temp, so a temporary object of the caller's named like one it uses would be used instead", subject, how, owner, path)
			if path == "" {
				problem = fmt.Sprintf("%s %s; it runs with the rights of %q and sets no search_path, so it resolves names on the caller's", subject, how, owner)
			}
			out = append(out, Finding{Kind: FindingDefinerSearchPath, Database: database, Subject: "function " + fn, Problem: problem,
				Fix: fmt.Sprintf("name every object with its schema in it and run ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp", fn)})
		}
	}
	return out, rows.Err()
}

// endsWithPgTemp reports whether a search_path setting lists pg_temp last.
func endsWithPgTemp(path string) bool {
	parts := strings.Split(path, ",")
	last := strings.Trim(strings.TrimSpace(parts[len(parts)-1]), `"`)
	return last == "pg_temp"
}

// auditRoleSettings compares the session defaults role gets in this
// database (ALTER ROLE / ALTER DATABASE ... SET, the most specific one
// winning) with what setup gives it.
func auditRoleSettings(ctx context.Context, q Querier, database, role string) ([]Finding, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT split_part(s, '=', 1), substr(s, strpos(s, '=') + 1)
		FROM pg_db_role_setting d CROSS JOIN unnest(d.setconfig) s
		WHERE d.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = $1))
		  AND d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
		ORDER BY (d.setrole <> 0 AND d.setdatabase <> 0), d.setrole <> 0, d.setdatabase <> 0`, role)
	if err != nil {
		return nil, fmt.Errorf("read the settings of role %q: %w", role, pg.Classify(err))
	}
	defer rows.Close()
	effective := map[string]string{} // least specific first, so the most specific wins
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		effective[strings.ToLower(k)] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	subject := fmt.Sprintf("role %q", role)
	db := pg.QuoteIdent(database)
	var out []Finding
	path, ok := effective["search_path"]
	switch {
	case !ok:
		out = append(out, Finding{Kind: FindingRoleSetting, Database: database, Subject: subject,
			Problem: `it has no search_path of its own, so its sessions use the default "$user", public: a schema named after the role would come first and shadow the tenant tables`,
			Fix:     fmt.Sprintf("run ALTER ROLE %s IN DATABASE %s SET search_path = public (`tenancy migrate` does)", pg.QuoteIdent(role), db)})
	case !plainSearchPath(path):
		out = append(out, Finding{Kind: FindingRoleSetting, Database: database, Subject: subject,
			Problem: fmt.Sprintf("its sessions start with search_path %s, which names more than the tenant tables' schema: another schema on it could shadow them", path),
			Fix:     fmt.Sprintf("run ALTER ROLE %s IN DATABASE %s SET search_path = public, and RESET any other search_path setting that applies to it (ALTER ROLE ... RESET, ALTER DATABASE ... RESET)", pg.QuoteIdent(role), db)})
	}
	for _, k := range []string{"role", "session_authorization"} {
		if v, ok := effective[k]; ok {
			out = append(out, Finding{Kind: FindingRoleSetting, Database: database, Subject: subject,
				Problem: fmt.Sprintf("its sessions start with %s = %s, so they act as another role than the one checked", k, v),
				Fix:     fmt.Sprintf("run ALTER ROLE %s RESET %s (and ALTER ROLE %s IN DATABASE %s RESET %s)", pg.QuoteIdent(role), k, pg.QuoteIdent(role), db, k)})
		}
	}
	return out, nil
}

// plainSearchPath reports whether a search_path names only the tenant
// tables' schema, with PostgreSQL's own schemas around it.
func plainSearchPath(path string) bool {
	for _, p := range strings.Split(path, ",") {
		switch strings.Trim(strings.TrimSpace(p), `"`) {
		case "public", "pg_catalog", "pg_temp":
		default:
			return false
		}
	}
	return true
}

// auditForeignObjects lists schemas the strategy does not use, and objects
// in its schemas that neither the admin nor the counts owner owns. The same in every runtime role's audit, so only the
// app role's reports them. A schema an installed extension made is the
// extension's (Citus's citus and citus_internal on a coordinator): only a
// superuser installs one.
func auditForeignObjects(ctx context.Context, q Querier, a auditTarget) ([]Finding, error) {
	if a.noForeign {
		return nil, nil
	}
	var out []Finding
	rows, err := q.QueryContext(ctx, `
		SELECT n.nspname, pg_get_userbyid(n.nspowner) FROM pg_namespace n
		WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND n.nspname <> ALL($1)
		  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
		                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
		ORDER BY 1`, a.schemas)
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", pg.Classify(err))
	}
	for rows.Next() {
		var name, owner string
		if err := rows.Scan(&name, &owner); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, Finding{Kind: FindingForeignSchema, Database: a.database, Subject: "schema " + pg.QuoteIdent(name),
			Problem: fmt.Sprintf("it is not one of the strategy's (%s) and is owned by %q: a schema named after a runtime role comes first on its default search_path, and anything here is outside what `tenancy check` knows", strings.Join(a.schemas, ", "), owner),
			Fix:     fmt.Sprintf("look at what it holds, then drop it (DROP SCHEMA %s CASCADE) or move it to a database of its own", pg.QuoteIdent(name))})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	foreign, err := stringColumn(ctx, q, `
		WITH owners AS (SELECT oid FROM pg_roles WHERE rolname IN ($2, $3))
		SELECT kind || ' ' || name || ' (owned by ' || owner || ')' FROM (
		    SELECT 'table' AS kind, c.oid::regclass::text AS name, pg_get_userbyid(c.relowner) AS owner, c.relowner AS owner_oid, c.oid AS oid
		    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		    WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
		    UNION ALL
		    SELECT 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proowner, p.oid
		    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		    WHERE n.nspname = ANY($1)) o
		WHERE o.owner_oid NOT IN (SELECT oid FROM owners)
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = o.oid AND d.deptype = 'e')
		ORDER BY 1`, a.schemas, a.admin, a.counter)
	if err != nil {
		return nil, fmt.Errorf("list objects of other roles: %w", err)
	}
	if len(foreign) > 0 {
		out = append(out, Finding{Kind: FindingForeignObject, Database: a.database, Subject: "schema " + strings.Join(a.schemas, ", "),
			Problem: "it holds objects that neither the admin nor setup made: " + strings.Join(foreign, ", ") + "; their owners can change them at will",
			Fix:     "look at each, then drop it or give it to the admin role (ALTER ... OWNER TO <PGUSER>)"})
	}
	return out, nil
}

// tableGrants is what the app role needs on each table of the tenant data,
// and so all it may have.
func tableGrants() map[string][]string {
	rw := []string{"SELECT", insertNotIDs, updateNotIDs, "DELETE"}
	return map[string][]string{
		"accounts": {"SELECT"}, "subtask_counts": {"SELECT"},
		"users": rw, "projects": rw, "tasks": rw, "subtasks": rw,
	}
}

// The app role inserts and updates every column but the ids: identity
// columns are shared by every tenant in one schema, and a role that may
// write one (INSERT ... OVERRIDING SYSTEM VALUE works for any role with
// INSERT on the column, GENERATED ALWAYS or not) can make another
// tenant's next insert fail on a duplicate key, and learn from the error
// which ids exist. These stand for "on every column but the ids"; plain
// INSERT and UPDATE mean "ids too".
const (
	insertNotIDs = "INSERT (not ids)"
	updateNotIDs = "UPDATE (not ids)"
)

// readerGrants are what the all-tenants reader needs: SELECT on tables.
func readerGrants(tables ...string) map[string][]string {
	want := map[string][]string{}
	for _, t := range tables {
		want[t] = []string{"SELECT"}
	}
	return want
}

// tablePrivileges lists, for every table in schema (views are auditViews'
// business), the privileges role holds on it (directly, or through PUBLIC
// and the memberships it inherits). It is nil for a superuser, who holds
// them all (roleAttributeFindings says so).
func tablePrivileges(ctx context.Context, q Querier, role, schema string) (map[string][]string, error) {
	var super bool
	if err := q.QueryRowContext(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = coalesce(nullif($1, ''), current_user)`, role).Scan(&super); err != nil {
		return nil, fmt.Errorf("read role %q: %w", role, pg.Classify(err))
	}
	if super {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `
		WITH r AS (SELECT oid FROM pg_roles WHERE rolname = coalesce(nullif($1, ''), current_user)),
		rels AS (`+pg.SchemaRelationsSQL("$2::text")+`)
		SELECT c.relname,
		       CASE WHEN p.priv NOT IN ('INSERT', 'UPDATE') OR has_table_privilege(r.oid, c.oid, p.priv)
		                 OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attidentity <> ''
		                              AND has_column_privilege(r.oid, c.oid, a.attnum, p.priv))
		            THEN p.priv ELSE p.priv || ' (not ids)' END
		FROM rels JOIN pg_class c ON c.oid = rels.objid CROSS JOIN r
		CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
		WHERE c.relkind IN ('r', 'p', 'f') -- views are auditViews'
		  AND CASE WHEN p.priv IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
		           THEN has_any_column_privilege(r.oid, c.oid, p.priv)
		           ELSE has_table_privilege(r.oid, c.oid, p.priv) END
		ORDER BY 1`, role, schema)
	if err != nil {
		return nil, fmt.Errorf("read the table privileges of role %q: %w", role, pg.Classify(err))
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, priv string
		if err := rows.Scan(&table, &priv); err != nil {
			return nil, err
		}
		out[table] = append(out[table], priv)
	}
	return out, rows.Err()
}

// grantFindings compares role's privileges on the tables of one schema
// with want, what the server needs: missing ones make its queries fail (closed);
// extra ones reach past it. TRUNCATE and TRIGGER matter most: TRUNCATE
// ignores row-level security, and a trigger of the role's own would run
// whenever the admin writes the table. A table that is not tenant data
// (tenanted) nor declared shared must not be reachable at all: whatever it
// holds, no policy keeps it apart. tenanted is nil in multidb, where every
// table is the one tenant's.
func grantFindings(database string, role string, reader bool, want, privs map[string][]string, tenanted map[string]bool) []Finding {
	if privs == nil {
		return nil
	}
	subject := fmt.Sprintf("role %q", role)
	var out []Finding
	tables := make([]string, 0, len(privs)+len(want))
	for t := range privs {
		tables = append(tables, t)
	}
	for t := range want {
		if _, ok := privs[t]; !ok {
			tables = append(tables, t)
		}
	}
	slices.Sort(tables)
	for _, t := range tables {
		have := privs[t]
		w, known := want[t]
		if !known && slices.Contains(sharedTables(), t) {
			continue
		}
		if !known && tenanted != nil && !tenanted[t] {
			out = append(out, Finding{Kind: FindingUntenantedTable, Database: database, Subject: "table " + t,
				Problem: fmt.Sprintf("%s may %s it, but it is neither tenant data (no account_id, no foreign key into a tenant's table) nor declared shared, so no policy keeps one tenant's rows in it from another", subject, strings.Join(have, ", ")),
				Fix:     fmt.Sprintf("give it account_id, row-level security and the tenant policy; or, if it holds no tenant's data, revoke it (REVOKE ALL ON %s FROM %s) or declare it shared", pg.QuoteIdent(t), pg.QuoteIdent(role))})
			continue
		}
		if !known && !reader {
			// Tenant data the server does not use yet (a table a later
			// migration adds, or, in multidb, any table of the tenant's
			// database): reading and writing it is row-level security's or
			// the database's business; what reaches past both is not.
			w = []string{"SELECT", "INSERT", "UPDATE", "DELETE", insertNotIDs, updateNotIDs}
		}
		var lacks, extra []string
		for _, p := range w {
			// Writing every column, ids included, covers writing all but ids
			// (and is extra, below).
			covered := (p == insertNotIDs && slices.Contains(have, "INSERT")) || (p == updateNotIDs && slices.Contains(have, "UPDATE"))
			if !slices.Contains(have, p) && !covered {
				lacks = append(lacks, p)
			}
		}
		for _, p := range have {
			if !slices.Contains(w, p) {
				extra = append(extra, p)
			}
		}
		if !known {
			lacks = nil
		}
		if len(lacks) > 0 && reader {
			out = append(out, Finding{Kind: FindingGrantMissing, Database: database, Subject: "table " + t,
				Problem: fmt.Sprintf("%s lacks %s on it, so the all-tenants pages fail", subject, strings.Join(lacks, ", ")),
				Fix:     "run `tenancy migrate`, which grants what the roles need"})
		} else if len(lacks) > 0 {
			out = append(out, Finding{Kind: FindingGrantMissing, Database: database, Subject: "table " + t,
				Problem: fmt.Sprintf("%s lacks %s on it, so the server's queries on it fail", subject, strings.Join(lacks, ", ")),
				Fix:     "run `tenancy migrate`, which grants what the roles need"})
		}
		if len(extra) == 0 {
			continue
		}
		kind, why := FindingExtraGrant, "more than the server needs"
		switch {
		case reader && slices.ContainsFunc(extra, func(p string) bool { return p != "SELECT" && p != "REFERENCES" }):
			kind, why = FindingReaderCanWrite, "writes, though it sees every tenant"
		case slices.Contains(extra, "TRUNCATE"):
			why = "TRUNCATE ignores row-level security and empties every tenant's rows"
		case slices.Contains(extra, "INSERT") || slices.Contains(extra, "UPDATE"):
			why = "it may write ids, which every tenant shares: an id it picks can make another tenant's insert fail, and a duplicate-key error tells it which ids exist"
		case slices.Contains(extra, "TRIGGER"):
			why = "a trigger of its own would run with the rights of whoever writes the table next, the admin included"
		}
		out = append(out, Finding{Kind: kind, Database: database, Subject: subject,
			Problem: fmt.Sprintf("it may %s on %s: %s", strings.Join(extra, ", "), t, why),
			Fix:     fmt.Sprintf("revoke them (REVOKE %s ON %s FROM %s); `tenancy migrate` grants exactly what is needed", strings.Join(extra, ", "), pg.QuoteIdent(t), pg.QuoteIdent(role))})
	}
	return out
}

// readerSecretsFinding: the all-tenants reader may read users' password
// hashes, which no page it serves shows.
func readerSecretsFinding(ctx context.Context, q Querier, database, role string) ([]Finding, error) {
	var reads bool
	err := q.QueryRowContext(ctx, `
		SELECT to_regclass('public.users') IS NOT NULL
		   AND has_column_privilege((SELECT oid FROM pg_roles WHERE rolname = coalesce(nullif($1, ''), current_user)), 'public.users', 'password', 'SELECT')`, role).Scan(&reads)
	if err != nil {
		return nil, fmt.Errorf("read the column privileges of role %q: %w", role, pg.Classify(err))
	}
	if !reads {
		return nil, nil
	}
	return []Finding{{Kind: FindingReaderReadsSecrets, Database: database, Subject: fmt.Sprintf("role %q", role),
		Problem: "it may read users.password, every tenant's password hashes, which no all-tenants page needs",
		Fix:     fmt.Sprintf("run REVOKE SELECT ON users FROM %s (`tenancy migrate` does)", pg.QuoteIdent(role))}}, nil
}

// stringColumn runs query and returns its one text column.
func stringColumn(ctx context.Context, q Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, pg.Classify(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// problems joins the findings' problems into one clause.
func problems(fs []Finding) string {
	ps := make([]string, len(fs))
	for i, f := range fs {
		ps[i] = f.Problem
	}
	return strings.Join(ps, " and ")
}

// Memo remembers which databases passed an audit, so that a server
// audits each tenant database once, not on every request. At most
// maxAudited are remembered; past that the memo starts again.
type Memo struct {
	mu     sync.Mutex
	passed map[string]bool
}

const maxAudited = 100_000

// Check runs audit for database unless it passed before.
func (m *Memo) Check(database string, audit func() error) error {
	m.mu.Lock()
	done := m.passed[database]
	m.mu.Unlock()
	if done {
		return nil
	}
	if err := audit(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.passed == nil || len(m.passed) >= maxAudited {
		m.passed = map[string]bool{}
	}
	m.passed[database] = true
	return nil
}

// Forget makes the next Check of database audit it again: a database
// dropped and made again under the same name is another database.
func (m *Memo) Forget(database string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.passed, database)
}
