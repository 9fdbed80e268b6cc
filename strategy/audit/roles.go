package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// dangerousPredefinedRoles are PostgreSQL's predefined roles whose members
// can read or write every tenant's rows, run programs or read files on the
// server, or disturb other sessions.
func dangerousPredefinedRoles() []string {
	return []string{
		"pg_execute_server_program", "pg_read_server_files", "pg_write_server_files",
		"pg_read_all_data", "pg_write_all_data", "pg_signal_backend", "pg_checkpoint",
	}
}

// roleFacts is what the role checks read about one role.
type roleFacts struct {
	user                                   string
	super, bypass, createRole, replication bool
	// elevated lists the superuser, BYPASSRLS or CREATEROLE roles it is a member of
	// (and could SET ROLE to).
	elevated string
	// predefined lists the dangerous predefined roles it is a member of.
	predefined string
	// sessionUser is who logged in, when that is the connected role and a
	// setting (ALTER ROLE ... SET role) made it act as another.
	sessionUser string
	readOnly    bool // default_transaction_read_only
}

// Querier is what the checks need of a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// errRoleMissing: readRoleFacts was asked about a role that does not exist.
var errRoleMissing = errors.New("role does not exist")

// readRoleFacts reads the facts of role; an empty role means the connected
// role. For the connected role, read-only is its session's actual
// default_transaction_read_only; for another role, it is the most
// specific ALTER ROLE / ALTER DATABASE setting that would apply when it
// logs in to this database.
func readRoleFacts(ctx context.Context, q Querier, role string) (roleFacts, error) {
	var f roleFacts
	err := q.QueryRowContext(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolreplication,
		       coalesce((SELECT string_agg(e.rolname, ', ' ORDER BY e.rolname) FROM pg_roles e
		                 WHERE e.oid <> r.oid AND (e.rolsuper OR e.rolbypassrls OR e.rolcreaterole)
		                   AND pg_has_role(r.oid, e.oid, 'MEMBER')), ''),
		       coalesce((SELECT string_agg(e.rolname, ', ' ORDER BY e.rolname) FROM pg_roles e
		                 WHERE e.rolname = ANY($2) AND pg_has_role(r.oid, e.oid, 'MEMBER')), ''),
		       CASE WHEN $1 = '' AND session_user <> current_user THEN session_user::text ELSE '' END,
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
		FROM pg_roles r WHERE r.rolname = coalesce(nullif($1, ''), current_user)`, role, dangerousPredefinedRoles()).
		Scan(&f.user, &f.super, &f.bypass, &f.createRole, &f.replication, &f.elevated, &f.predefined, &f.sessionUser, &f.readOnly)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return f, fmt.Errorf("%w: %q", errRoleMissing, role)
		}
		if pg.IsPgError(err, "28000") || pg.IsPgError(err, "3D000") {
			return f, fmt.Errorf("%w (run `tenancy setup` to create the roles and databases)", err)
		}
		return f, pg.Classify(err)
	}
	return f, nil
}

// roleAttributeFindings lists the server-wide attributes and memberships
// that would let a runtime role past row-level security or past the
// database: superuser, BYPASSRLS (unless it is the all-tenants reader,
// which needs it), CREATEROLE (it could grant itself the reader),
// REPLICATION (the log stream carries every tenant's rows), membership of a
// role that is or has either of the first two, or of a dangerous predefined
// role.
func roleAttributeFindings(f roleFacts, reader bool) []Finding {
	subject := fmt.Sprintf("role %q", f.user)
	q := pg.QuoteIdent(f.user)
	var out []Finding
	if f.super {
		out = append(out, Finding{Kind: FindingSuperuser, Subject: subject,
			Problem: "it is a superuser, so row-level security, grants and read-only defaults do not apply to it",
			Fix:     "run ALTER ROLE " + q + " NOSUPERUSER"})
	}
	if f.bypass && !reader {
		out = append(out, Finding{Kind: FindingBypassRLS, Subject: subject,
			Problem: "it has BYPASSRLS, so row-level security does not apply to it",
			Fix:     "run ALTER ROLE " + q + " NOBYPASSRLS"})
	}
	if f.createRole {
		out = append(out, Finding{Kind: FindingCreateRole, Subject: subject,
			Problem: "it has CREATEROLE, so it can grant itself other roles (the all-tenants reader among them) and read every tenant",
			Fix:     "run ALTER ROLE " + q + " NOCREATEROLE"})
	}
	if f.replication {
		out = append(out, Finding{Kind: FindingReplication, Subject: subject,
			Problem: "it has REPLICATION, so it can stream the server's write-ahead log, every tenant's rows included",
			Fix:     "run ALTER ROLE " + q + " NOREPLICATION"})
	}
	if f.elevated != "" && !f.super { // a superuser is a member of every role
		out = append(out, Finding{Kind: FindingPrivilegedMember, Subject: subject,
			Problem: "it is a member of " + f.elevated + ", which bypass row-level security or create roles (it could SET ROLE to them and do so)",
			Fix:     fmt.Sprintf("revoke that membership (REVOKE <role> FROM %s)", q)})
	}
	if f.predefined != "" && !f.super {
		out = append(out, Finding{Kind: FindingPredefinedMember, Subject: subject,
			Problem: "it is a member of " + f.predefined + ", which read or write every tenant's data, files or programs on the server, or stop other sessions",
			Fix:     fmt.Sprintf("revoke that membership (REVOKE <role> FROM %s)", q)})
	}
	if f.sessionUser != "" {
		out = append(out, Finding{Kind: FindingRoleSetting, Subject: fmt.Sprintf("role %q", f.sessionUser),
			Problem: fmt.Sprintf("its sessions act as role %q (a role setting), so what was checked of it is not what its sessions may do", f.user),
			Fix:     fmt.Sprintf("run ALTER ROLE %s RESET role (and ALTER ROLE %s IN DATABASE <database> RESET role)", pg.QuoteIdent(f.sessionUser), pg.QuoteIdent(f.sessionUser))})
	}
	return out
}

// readerRoleFindings lists what is wrong with the all-tenants role's
// attributes: it must read every tenant (BYPASSRLS) and be read-only. What
// it may write is a grant, per database (see auditDatabase).
func readerRoleFindings(f roleFacts) []Finding {
	subject := fmt.Sprintf("role %q", f.user)
	out := roleAttributeFindings(f, true)
	if !f.bypass {
		out = append(out, Finding{Kind: FindingReaderNoBypassRLS, Subject: subject,
			Problem: "it lacks BYPASSRLS, so it would see no tenant's rows",
			Fix:     fmt.Sprintf("run ALTER ROLE %s BYPASSRLS", pg.QuoteIdent(f.user))})
	}
	if !f.readOnly {
		out = append(out, Finding{Kind: FindingReaderNotReadOnly, Subject: subject,
			Problem: "its transactions are not read-only by default",
			Fix:     fmt.Sprintf("run ALTER ROLE %s SET default_transaction_read_only = on", pg.QuoteIdent(f.user))})
	}
	return out
}

// RuntimeRole refuses a connection whose role's attributes could
// take it past row-level security or the database (see
// roleAttributeFindings). `tenancy check` reports the same findings from
// the admin's side; what the role may reach in each database is
// auditDatabase's.
func RuntimeRole(ctx context.Context, db *sql.DB) error {
	f, err := readRoleFacts(ctx, db, "")
	if err != nil {
		return fmt.Errorf("check the server's database role: %w", err)
	}
	if fs := roleAttributeFindings(f, false); len(fs) > 0 {
		return fmt.Errorf("%w: the server connects as %q and %s; connect as an ordinary role instead (APP_DB_USER; `tenancy setup` creates one)",
			strategy.ErrUnsafeRole, f.user, problems(fs))
	}
	return nil
}

// Reader makes sure the all-tenants role can read every tenant
// (BYPASSRLS), can write nothing, and reaches nothing else in database.
func Reader(ctx context.Context, db *sql.DB, opts strategy.Options) error {
	f, err := readRoleFacts(ctx, db, "")
	if err != nil {
		return fmt.Errorf("check the all-tenants database role: %w", err)
	}
	fs := readerRoleFindings(f)
	more, err := auditReader(ctx, db, opts.Database, "", opts)
	if err != nil {
		return fmt.Errorf("check the all-tenants database role: %w", err)
	}
	if fs = append(fs, more...); len(fs) > 0 {
		return fmt.Errorf("%w: the all-tenants view connects as %q (READER_DB_USER; `tenancy setup` creates it right): %w",
			strategy.ErrUnsafeRole, f.user, unsafeDeployment(fs))
	}
	return nil
}

// auditReader is what the all-tenants reader may reach in database beyond
// its attributes: auditDatabase's findings, the grants (SELECT on what the
// all-tenants pages read, nothing else), and no password hashes.
func auditReader(ctx context.Context, q Querier, database, role string, opts strategy.Options) ([]Finding, error) {
	fs, err := auditDatabase(ctx, q, auditTarget{database: database, role: role, noForeign: true, admin: opts.AdminUser, counter: opts.CountsOwner(), schemas: []string{"public"}})
	if err != nil {
		return nil, err
	}
	privs, err := tablePrivileges(ctx, q, role, "public")
	if err != nil {
		return nil, err
	}
	name := role
	if name == "" {
		name = opts.ReaderUser
	}
	fs = append(fs, grantFindings(database, name, true, readerGrants("accounts", "projects", "tasks", "subtasks", "subtask_counts"), privs, nil)...)
	secrets, err := readerSecretsFinding(ctx, q, database, role)
	if err != nil {
		return nil, err
	}
	return append(fs, secrets...), nil
}

// AdminRole makes sure the admin is a superuser, which singleschema and
// multischema need (why says for what), e.g. for singleschema to create
// the BYPASSRLS reader role and see every tenant's accounts (FORCE'd
// row-level security hides them from any other role, so seed could not tell
// which accounts exist).
func AdminRole(ctx context.Context, db Querier, strategyName, why string) error {
	f, err := readRoleFacts(ctx, db, "")
	if err != nil {
		return fmt.Errorf("check the admin database role: %w", err)
	}
	if !f.super {
		return fmt.Errorf("%w: %s's admin role %q (PGUSER) must be a superuser: %s",
			strategy.ErrUnsafeRole, strategyName, f.user, why)
	}
	return nil
}

// SingleSchemaAdminWhy is why singleschema's admin must be a superuser.
const SingleSchemaAdminWhy = "it creates the BYPASSRLS all-tenants role, and seeding must see every tenant's accounts, which row-level security hides from any other role"
