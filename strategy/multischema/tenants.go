package multischema

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multischema/migrations"
)

// A tenant is a schema, a role and a row in public.accounts. The schema and
// role are made (idempotently) before the account's row is written, as the
// admin; the row, its counts and its data are one transaction.

// ensureTenant makes tenant id's role and schema when they are missing,
// runs the schema's pending migrations, and grants what each role needs in
// it. rep says what was done. A schema that exists but is not the admin's
// is refused: its owner can change it at will.
func (a *Admin) ensureTenant(ctx context.Context, db *sql.DB, id models.TenantID, rep *strategy.DatabaseReport) error {
	schema, role := SchemaOf(id), RoleOf(a.opts, id)
	rep.Database = schema
	start := time.Now()
	if _, err := pg.EnsureRole(ctx, db, pg.RoleSpec{Name: role, NoLogin: true}); err != nil {
		return err
	}
	var owner string
	var mine bool
	err := db.QueryRowContext(ctx, `SELECT pg_get_userbyid(nspowner), nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
		FROM pg_namespace WHERE nspname = $1`, schema).Scan(&owner, &mine)
	switch {
	case err == sql.ErrNoRows:
		if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pg.QuoteIdent(schema)); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
		rep.Created = true
	case err != nil:
		return fmt.Errorf("look up schema %s: %w", schema, err)
	case !mine:
		return fmt.Errorf("%w: schema %s exists and is owned by %q, not by the admin role: drop it, or give it to the admin after checking what it holds",
			strategy.ErrUnsafeDeployment, schema, owner)
	}
	rep.CreateTime = time.Since(start)
	start = time.Now()
	defer func() { rep.MigrateTime = time.Since(start) }()
	if err := a.migrateSchema(ctx, db, schema, rep); err != nil {
		return err
	}
	return tenantGrants(ctx, db, a.opts, schema, role)
}

// migrateSchema runs the tenant migrations pending in schema, with
// goose's version table in the schema too: each tenant's schema is
// migrated, and versioned, on its own, in a transaction of its own (see
// pg.Migrate): one transaction over every schema keeps every schema's
// locks until it commits, and on a default-sized server runs out of lock
// slots after about 300 schemas (locklimit_test.go). A schema already at
// every version is only read.
func (a *Admin) migrateSchema(ctx context.Context, db *sql.DB, schema string, rep *strategy.DatabaseReport) error {
	files := pg.WithoutNewest(migrations.Tenant(), a.opts.HoldBackMigrations)
	if current, err := pg.AtEveryVersion(ctx, db, files, schema, goose.DefaultTablename); err != nil {
		return err
	} else if current >= 0 {
		rep.From, rep.To = current, current
		return nil
	}
	return pg.Migrate(ctx, db, files, schema, rep)
}

// tenantGrants gives, in one transaction, the tenant's role what the
// server needs of its schema (every column but the ids to write, as in the
// other strategies) and no other schema; the reader what the all-tenants
// list reads; the counts owner its counts row. It takes away anything else
// anyone, PUBLIC included, was given there. The schema's tables and sequences are
// listed through pg_depend, which is indexed by schema: REVOKE ... ON ALL
// TABLES IN SCHEMA reads all of pg_class instead, which at a thousand
// tenants is 15 ms a schema.
func tenantGrants(ctx context.Context, db *sql.DB, opts strategy.Options, schema, role string) error {
	s, r := pg.QuoteIdent(schema), pg.QuoteIdent(role)
	reader, counter, app := pg.QuoteIdent(opts.ReaderUser), pg.QuoteIdent(opts.CountsOwner()), pg.QuoteIdent(opts.AppUser)
	return pg.WithTx(ctx, db, func(tx *sql.Tx) error {
		rels, err := pg.SchemaRelations(ctx, tx, schema)
		if err != nil {
			return err
		}
		// Whoever was granted anything here loses it, other tenants'
		// roles included, before the grants below.
		all := strings.Join(slices.Compact(slices.Sorted(slices.Values(append([]string{"PUBLIC", r, reader, counter, app}, rels.Grantees...)))), ", ")
		stmts := []string{
			"REVOKE ALL ON SCHEMA " + s + " FROM " + all,
			"GRANT USAGE ON SCHEMA " + s + " TO " + r + ", " + reader + ", " + counter,
		}
		if len(rels.Tables) > 0 {
			stmts = append(stmts, "REVOKE ALL ON TABLE "+strings.Join(rels.Tables, ", ")+" FROM "+all)
		}
		if len(rels.Sequences) > 0 {
			stmts = append(stmts, "REVOKE ALL ON SEQUENCE "+strings.Join(rels.Sequences, ", ")+" FROM "+all)
		}
		stmts = append(stmts,
			fmt.Sprintf("GRANT SELECT, DELETE ON %[1]s.users, %[1]s.projects, %[1]s.tasks, %[1]s.subtasks TO %[2]s", s, r),
			fmt.Sprintf("GRANT SELECT ON %s.subtask_counts TO %s", s, r),
			// The server reads the schema's version, as the tenant, to
			// tell a schema still being upgraded (pg.RequireCurrent).
			fmt.Sprintf("GRANT SELECT ON %s.goose_db_version TO %s", s, r),
			fmt.Sprintf("GRANT SELECT ON %[1]s.projects, %[1]s.tasks, %[1]s.subtasks, %[1]s.subtask_counts TO %[2]s", s, reader),
			fmt.Sprintf("GRANT SELECT, UPDATE ON %s.subtask_counts TO %s", s, counter),
			// The page joins each row to its account, in public.
			"GRANT "+pg.QuoteIdent(TenantsRole(opts))+" TO "+r,
			// NOINHERIT: the app role has none of this until it takes the
			// role on, one transaction at a time.
			"GRANT "+r+" TO "+app,
		)
		for _, table := range []string{"users", "projects", "tasks", "subtasks"} {
			cols := rels.Writable[table]
			if cols == "" {
				return fmt.Errorf("grant on %s.%s: the table is missing; run `tenancy migrate`", schema, table)
			}
			stmts = append(stmts, fmt.Sprintf("GRANT INSERT (%[1]s), UPDATE (%[1]s) ON %[2]s.%[3]s TO %[4]s", cols, s, table, r))
		}
		// One round trip: with no arguments the statements go as one
		// simple query, which stops at the first error.
		if _, err := tx.ExecContext(ctx, strings.Join(stmts, ";\n")); err != nil {
			return fmt.Errorf("grant on schema %s: %w", schema, err)
		}
		return nil
	})
}

// sharedGrants gives the roles what they need of the database and of
// public, in one transaction, and takes away the rest (PUBLIC's default
// rights to connect and to create temporary objects included). The app
// role gets nothing in public: it reads accounts only as a tenant's role
// (its own row's name, joined to its rows) and looks tenants up through
// the reader.
func sharedGrants(ctx context.Context, db *sql.DB, opts strategy.Options) error {
	app, reader, counter := pg.QuoteIdent(opts.AppUser), pg.QuoteIdent(opts.ReaderUser), pg.QuoteIdent(opts.CountsOwner())
	tenants := pg.QuoteIdent(TenantsRole(opts))
	database := pg.QuoteIdent(opts.Database)
	runtime := app + ", " + reader
	everyone := runtime + ", " + counter + ", " + tenants
	stmts := []string{
		"REVOKE ALL ON DATABASE " + database + " FROM PUBLIC",
		"REVOKE ALL ON DATABASE " + database + " FROM " + everyone,
		"GRANT CONNECT ON DATABASE " + database + " TO " + runtime,
		"REVOKE ALL ON SCHEMA public FROM PUBLIC",
		"REVOKE ALL ON SCHEMA public FROM " + everyone,
		"GRANT USAGE ON SCHEMA public TO " + runtime + ", " + counter + ", " + tenants,
		"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM " + everyone,
		"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM " + everyone,
		"GRANT SELECT ON public.accounts, public.tenant_totals TO " + reader,
		"GRANT SELECT ON public.accounts TO " + tenants,
		"GRANT SELECT, UPDATE ON public.tenant_totals TO " + counter,
		"GRANT CREATE ON SCHEMA public TO " + counter,
		"ALTER FUNCTION public.subtask_counts_apply() OWNER TO " + counter,
		"ALTER FUNCTION public.subtask_counts_clear() OWNER TO " + counter,
		"REVOKE CREATE ON SCHEMA public FROM " + counter,
	}
	// The app role's only tables in public: sign-in of operators and
	// sign-out.
	stmts = append(stmts, operators.Grants(opts.AppUser)...)
	for _, role := range []string{opts.AppUser, opts.ReaderUser} {
		for _, s := range pg.RoleSettings() {
			stmts = append(stmts, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET %s = %s", pg.QuoteIdent(role), database, s[0], pg.QuoteLiteral(s[1])))
		}
	}
	return pg.WithTx(ctx, db, func(tx *sql.Tx) error {
		for _, stmt := range stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("grant (%s): %w", stmt, err)
			}
		}
		return nil
	})
}

// dropTenant removes tenant id's schema (everything in it) and role.
func (a *Admin) dropTenant(ctx context.Context, db *sql.DB, id models.TenantID) error {
	schema, role := SchemaOf(id), RoleOf(a.opts, id)
	stmts := []string{"DROP SCHEMA IF EXISTS " + pg.QuoteIdent(schema) + " CASCADE"}
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return fmt.Errorf("look up role %s: %w", role, err)
	}
	if exists {
		// Its grants in this database go first: a role with privileges
		// cannot be dropped.
		stmts = append(stmts, "DROP OWNED BY "+pg.QuoteIdent(role), "DROP ROLE "+pg.QuoteIdent(role))
	}
	for _, stmt := range stmts {
		if err := execRetryingDeadlocks(ctx, db, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// execRetryingDeadlocks runs stmt, again if PostgreSQL chose it to end a
// deadlock: DROP SCHEMA ... CASCADE locks the tables in its own order, and
// a page read of the same tenant locking them in another can hold one it
// needs. The deadlock is found in a second (deadlock_timeout); a few tries
// get through.
func execRetryingDeadlocks(ctx context.Context, db *sql.DB, stmt string) error {
	var err error
	for range 5 {
		if _, err = db.ExecContext(ctx, stmt); !pg.IsPgError(err, "40P01") {
			return err
		}
	}
	return err
}
