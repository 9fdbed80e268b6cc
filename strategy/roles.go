package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// roleSpec describes a login role that setup creates when missing.
type roleSpec struct {
	name, password string
	// bypassRLS is set only for the all-tenants reader, which also gets
	// only SELECT and read-only transactions.
	bypassRLS bool
}

// ensureRole creates the role when it is missing, and refuses an existing
// role whose attributes would break isolation rather than silently changing
// someone else's role.
func ensureRole(ctx context.Context, db *sql.DB, r roleSpec) (created bool, err error) {
	var super, bypass bool
	err = db.QueryRowContext(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1`, r.name).Scan(&super, &bypass)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		bypass := "NOBYPASSRLS"
		if r.bypassRLS {
			bypass = "BYPASSRLS"
		}
		stmt := fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER %s NOCREATEDB NOCREATEROLE NOREPLICATION", quoteIdent(r.name), bypass)
		if r.password != "" {
			stmt += " PASSWORD " + quoteLiteral(r.password)
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil && !IsPgError(err, "42710") { // 42710: created meanwhile
			return false, fmt.Errorf("create role %q: %w", r.name, err)
		}
		created = true
	case err != nil:
		return false, fmt.Errorf("look up role %q: %w", r.name, err)
	case super:
		return false, fmt.Errorf("%w: role %q is a superuser, so row-level security does not apply to it; run ALTER ROLE %s NOSUPERUSER, or choose another role name", ErrUnsafeRole, r.name, quoteIdent(r.name))
	case bypass && !r.bypassRLS:
		return false, fmt.Errorf("%w: role %q has BYPASSRLS; run ALTER ROLE %s NOBYPASSRLS, or choose another role name", ErrUnsafeRole, r.name, quoteIdent(r.name))
	default:
		if r.password != "" {
			if _, err := db.ExecContext(ctx, fmt.Sprintf("ALTER ROLE %s PASSWORD %s", quoteIdent(r.name), quoteLiteral(r.password))); err != nil {
				return false, fmt.Errorf("set password of role %q: %w", r.name, err)
			}
		}
	}
	if r.bypassRLS {
		// The all-tenants role can read everything, so it can write nothing.
		if _, err := db.ExecContext(ctx, fmt.Sprintf("ALTER ROLE %s SET default_transaction_read_only = on", quoteIdent(r.name))); err != nil {
			return created, fmt.Errorf("make role %q read-only: %w", r.name, err)
		}
	}
	return created, nil
}

// ensureDatabase creates database name, owned by the connected admin role,
// when it is missing.
func ensureDatabase(ctx context.Context, db *sql.DB, name string) (created bool, err error) {
	return ensureDatabaseFrom(ctx, db, name, "")
}

// ensureDatabaseFrom is ensureDatabase copying template (if not empty)
// instead of PostgreSQL's default template.
func ensureDatabaseFrom(ctx context.Context, db *sql.DB, name, template string) (created bool, err error) {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	stmt := "CREATE DATABASE " + quoteIdent(name)
	if template != "" {
		stmt += " TEMPLATE " + quoteIdent(template)
	}
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		if IsPgError(err, "42P04") { // created meanwhile
			return false, nil
		}
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
	return true, nil
}

// grants gives the runtime roles exactly what they need on a migrated
// database. It is idempotent, so setup and migrate both run it.
func grants(ctx context.Context, db *sql.DB, database, app, reader string) error {
	roles := quoteIdent(app)
	if reader != "" {
		roles += ", " + quoteIdent(reader)
	}
	stmts := []string{
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", quoteIdent(database), roles),
		fmt.Sprintf("GRANT USAGE ON SCHEMA public TO %s", roles),
		// Accounts are created by the admin (seed, sign-up), never by a tenant.
		fmt.Sprintf("GRANT SELECT ON accounts TO %s", quoteIdent(app)),
		// The counts are kept by triggers with the admin's rights; the app
		// only reads them, so no tenant code path can change one.
		fmt.Sprintf("GRANT SELECT ON subtask_counts TO %s", quoteIdent(app)),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON users, projects, tasks, subtasks TO %s", quoteIdent(app)),
		fmt.Sprintf("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %s", quoteIdent(app)),
	}
	if reader != "" {
		stmts = append(stmts, fmt.Sprintf("GRANT SELECT ON accounts, users, projects, tasks, subtasks, subtask_counts TO %s", quoteIdent(reader)))
	}
	// The server runs a few statements over and over, each keyed by a
	// tenant id and read through an index, so one generic plan per
	// connection serves every tenant. Left to choose, PostgreSQL kept
	// planning the list page afresh on every execution (a custom plan,
	// ~0.9 ms of planning against ~0.3 ms of execution), because the
	// generic plan's estimate looked no cheaper.
	for _, role := range []string{app, reader} {
		if role != "" {
			stmts = append(stmts, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET plan_cache_mode = force_generic_plan", quoteIdent(role), quoteIdent(database)))
		}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("grant (%s): %w", s, err)
		}
	}
	return nil
}

// roleFacts is what the role checks read about one role.
type roleFacts struct {
	user          string
	super, bypass bool
	// elevated lists the superuser or BYPASSRLS roles it is a member of
	// (and could SET ROLE to).
	elevated string
	// owned lists the public tables it owns or may become the owner of.
	owned string
	// writable lists the public tables it may insert into, update or delete
	// from.
	writable string
	readOnly bool // default_transaction_read_only
}

// querier is what the checks need of a *sql.DB, *sql.Conn or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// errRoleMissing: readRoleFacts was asked about a role that does not exist.
var errRoleMissing = errors.New("role does not exist")

// readRoleFacts reads the facts of role as seen from the database q is
// connected to (ownership and grants are per database); an empty role means
// the connected role. For the connected role, read-only is its session's
// actual default_transaction_read_only; for another role, it is the most
// specific ALTER ROLE / ALTER DATABASE setting that would apply when it
// logs in to this database.
func readRoleFacts(ctx context.Context, q querier, role string) (roleFacts, error) {
	var f roleFacts
	err := q.QueryRowContext(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls,
		       coalesce((SELECT string_agg(e.rolname, ', ' ORDER BY e.rolname) FROM pg_roles e
		                 WHERE e.oid <> r.oid AND (e.rolsuper OR e.rolbypassrls)
		                   AND pg_has_role(r.oid, e.oid, 'MEMBER')), ''),
		       coalesce((SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
		                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		                   AND pg_has_role(r.oid, c.relowner, 'MEMBER')), ''),
		       coalesce((SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
		                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		                   AND has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')), ''),
		       CASE WHEN r.rolname = current_user
		            THEN current_setting('default_transaction_read_only') = 'on'
		            ELSE coalesce((
		                SELECT lower(split_part(s, '=', 2)) IN ('on', 'true', 'yes', '1')
		                FROM pg_db_role_setting d CROSS JOIN unnest(d.setconfig) s
		                WHERE split_part(s, '=', 1) = 'default_transaction_read_only'
		                  AND d.setrole IN (0, r.oid)
		                  AND d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
		                ORDER BY (d.setrole <> 0 AND d.setdatabase <> 0) DESC, d.setrole <> 0 DESC, d.setdatabase <> 0 DESC
		                LIMIT 1), false)
		       END
		FROM pg_roles r WHERE r.rolname = coalesce(nullif($1, ''), current_user)`, role).Scan(&f.user, &f.super, &f.bypass, &f.elevated, &f.owned, &f.writable, &f.readOnly)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return f, fmt.Errorf("%w: %q", errRoleMissing, role)
		}
		if IsPgError(err, "28000") || IsPgError(err, "3D000") {
			return f, fmt.Errorf("%w (run `tenancy setup` to create the roles and databases)", err)
		}
		return f, classify(err)
	}
	return f, nil
}

// roleAttributeFindings lists the server-wide attributes that would let
// the app role past row-level security: superuser, BYPASSRLS, or
// membership of a role that is either (it could SET ROLE to it).
func roleAttributeFindings(f roleFacts) []Finding {
	subject := fmt.Sprintf("role %q", f.user)
	var out []Finding
	if f.super {
		out = append(out, Finding{Kind: FindingSuperuser, Subject: subject,
			Problem: "it is a superuser, so row-level security does not apply to it",
			Fix:     fmt.Sprintf("run ALTER ROLE %s NOSUPERUSER", quoteIdent(f.user))})
	}
	if f.bypass {
		out = append(out, Finding{Kind: FindingBypassRLS, Subject: subject,
			Problem: "it has BYPASSRLS, so row-level security does not apply to it",
			Fix:     fmt.Sprintf("run ALTER ROLE %s NOBYPASSRLS", quoteIdent(f.user))})
	}
	if f.elevated != "" && !f.super { // a superuser is a member of every role
		out = append(out, Finding{Kind: FindingPrivilegedMember, Subject: subject,
			Problem: "it is a member of " + f.elevated + ", which bypass row-level security (it could SET ROLE to them)",
			Fix:     fmt.Sprintf("revoke that membership (REVOKE <role> FROM %s)", quoteIdent(f.user))})
	}
	return out
}

// ownershipFindings lists the tables of database that f's role owns or may
// become the owner of: an owner can switch row-level security off, and in
// multidb drop or alter a tenant's tables. A superuser owns everything
// anyway, which roleAttributeFindings already says.
func ownershipFindings(f roleFacts, database string) []Finding {
	if f.owned == "" || f.super {
		return nil
	}
	return []Finding{{Kind: FindingOwnsTable, Database: database, Subject: fmt.Sprintf("role %q", f.user),
		Problem: "it owns (or can become the owner of) " + f.owned + ", so it could turn row-level security off or change the tables",
		Fix:     "give the tables back to the admin role (ALTER TABLE <table> OWNER TO <PGUSER>) and revoke any membership of the owner"}}
}

// readerRoleFindings lists what is wrong with the all-tenants role: it
// must read every tenant (BYPASSRLS) and be able to write nothing.
func readerRoleFindings(f roleFacts, database string) []Finding {
	subject := fmt.Sprintf("role %q", f.user)
	var out []Finding
	if f.super {
		out = append(out, Finding{Kind: FindingSuperuser, Subject: subject,
			Problem: "it is a superuser, so read-only is only a default it can turn off",
			Fix:     fmt.Sprintf("run ALTER ROLE %s NOSUPERUSER", quoteIdent(f.user))})
	}
	if !f.bypass {
		out = append(out, Finding{Kind: FindingReaderNoBypassRLS, Subject: subject,
			Problem: "it lacks BYPASSRLS, so it would see no tenant's rows",
			Fix:     fmt.Sprintf("run ALTER ROLE %s BYPASSRLS", quoteIdent(f.user))})
	}
	if !f.readOnly {
		out = append(out, Finding{Kind: FindingReaderNotReadOnly, Subject: subject,
			Problem: "its transactions are not read-only by default",
			Fix:     fmt.Sprintf("run ALTER ROLE %s SET default_transaction_read_only = on", quoteIdent(f.user))})
	}
	if f.writable != "" {
		out = append(out, Finding{Kind: FindingReaderCanWrite, Database: database, Subject: subject,
			Problem: "it may write to " + f.writable,
			Fix:     fmt.Sprintf("revoke it (REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON <table> FROM %s)", quoteIdent(f.user))})
	}
	return append(out, ownershipFindings(f, database)...)
}

// problems joins the findings' problems into one clause.
func problems(fs []Finding) string {
	ps := make([]string, len(fs))
	for i, f := range fs {
		ps[i] = f.Problem
	}
	return strings.Join(ps, " and ")
}

// checkRuntimeRole refuses a connection whose role could bypass row-level
// security: a superuser, a BYPASSRLS role, a member of either, or a role
// that owns (or may SET ROLE to the owner of) a table in the public schema.
// `tenancy check` reports the same findings (from the admin's side).
func checkRuntimeRole(ctx context.Context, db *sql.DB) error {
	f, err := readRoleFacts(ctx, db, "")
	if err != nil {
		return fmt.Errorf("check the server's database role: %w", err)
	}
	if fs := append(roleAttributeFindings(f), ownershipFindings(f, "")...); len(fs) > 0 {
		return fmt.Errorf("%w: the server connects as %q and %s; connect as an ordinary role instead (APP_DB_USER; `tenancy setup` creates one)",
			ErrUnsafeRole, f.user, problems(fs))
	}
	return nil
}

// checkReaderRole makes sure the all-tenants role can read every tenant
// (BYPASSRLS) and can write nothing.
func checkReaderRole(ctx context.Context, db *sql.DB) error {
	f, err := readRoleFacts(ctx, db, "")
	if err != nil {
		return fmt.Errorf("check the all-tenants database role: %w", err)
	}
	if fs := readerRoleFindings(f, ""); len(fs) > 0 {
		return fmt.Errorf("%w: the all-tenants view connects as %q and %s; drop the role and run `tenancy setup`, or fix it by hand (READER_DB_USER)",
			ErrUnsafeRole, f.user, problems(fs))
	}
	return nil
}

// checkAdminRole makes sure the singleschema admin can do its work: create
// the BYPASSRLS reader role and see every tenant's accounts (FORCE'd
// row-level security hides them from any other role, so seed could not tell
// which accounts exist).
func checkAdminRole(ctx context.Context, db querier) error {
	f, err := readRoleFacts(ctx, db, "")
	if err != nil {
		return fmt.Errorf("check the admin database role: %w", err)
	}
	if !f.super {
		return fmt.Errorf("%w: singleschema's admin role %q (PGUSER) must be a superuser: it creates the BYPASSRLS all-tenants role, and seeding must see every tenant's accounts, which row-level security hides from any other role",
			ErrUnsafeRole, f.user)
	}
	return nil
}
