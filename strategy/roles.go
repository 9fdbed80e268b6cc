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
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name)); err != nil {
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
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON users, projects, tasks, subtasks TO %s", quoteIdent(app)),
		fmt.Sprintf("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %s", quoteIdent(app)),
	}
	if reader != "" {
		stmts = append(stmts, fmt.Sprintf("GRANT SELECT ON accounts, users, projects, tasks, subtasks TO %s", quoteIdent(reader)))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("grant (%s): %w", s, err)
		}
	}
	return nil
}

// checkRuntimeRole refuses a connection whose role could bypass row-level
// security: a superuser, a BYPASSRLS role, or a role that owns (or may SET
// ROLE to the owner of) a table in the public schema.
func checkRuntimeRole(ctx context.Context, db *sql.DB) error {
	var (
		user          string
		super, bypass bool
		owned         string
	)
	err := db.QueryRowContext(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls,
		       coalesce((SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
		                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		                   AND pg_has_role(r.oid, c.relowner, 'MEMBER')), '')
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&user, &super, &bypass, &owned)
	if err != nil {
		return classify(fmt.Errorf("check the server's database role: %w", err))
	}
	var problems []string
	if super {
		problems = append(problems, "it is a superuser")
	}
	if bypass {
		problems = append(problems, "it has BYPASSRLS")
	}
	if owned != "" && !super {
		problems = append(problems, "it owns (or can become the owner of) "+owned)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: the server connects as %q and %s, so row-level security would not apply; connect as an ordinary role instead (APP_DB_USER; `tenancy setup` creates one)",
			ErrUnsafeRole, user, strings.Join(problems, " and "))
	}
	return nil
}
