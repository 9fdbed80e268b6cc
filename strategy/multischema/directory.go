package multischema

import (
	"context"
	"database/sql"
	"fmt"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/accountdir"
	"tenancy/strategy/internal/pg"
)

// multischema's directory is public.accounts: a tenant is its account
// row (with its line in tenant_totals), its schema and its role.

func (a *Admin) entryOf(id models.TenantID, slug, name string) strategy.TenantEntry {
	schema, role := SchemaOf(id), RoleOf(a.opts, id)
	return strategy.TenantEntry{ID: id, Slug: slug, Name: name, Database: schema,
		Location: fmt.Sprintf("schema %s (role %s) in database %s", schema, role, a.opts.Database),
		Holds: []string{
			fmt.Sprintf("schema %s and everything in it", schema),
			fmt.Sprintf("role %s", role),
			fmt.Sprintf("account %d in public.accounts and its line in public.tenant_totals", id),
		},
	}
}

// directory is multischema's: public.accounts; adding a tenant makes its
// schema and role too (see CreateTenant, which drops them again if the
// account is not written).
func (a *Admin) directory() accountdir.Directory {
	return accountdir.Directory{
		Pool:  func() (*sql.DB, error) { pool, _, err := a.conn(); return pool, err },
		Entry: a.entryOf,
		Create: func(ctx context.Context, acct models.Account) error {
			return a.CreateTenant(ctx, acct, true, func(*gorm.DB) error { return nil })
		},
		OneDatabase: "every multischema tenant is a schema of database " + a.opts.Database,
	}
}

// DeleteTenant drops the tenant's schema (everything in it) and role and
// deletes its account (its totals go with it), in one transaction: all of
// it, or nothing.
func (a *Admin) DeleteTenant(ctx context.Context, slug string) (strategy.TenantEntry, error) {
	e, err := a.LookUpTenant(ctx, slug)
	if err != nil {
		return e, err
	}
	pool, _, err := a.conn()
	if err != nil {
		return e, err
	}
	schema, role := pg.QuoteIdent(SchemaOf(e.ID)), pg.QuoteIdent(RoleOf(a.opts, e.ID))
	// DROP SCHEMA ... CASCADE locks the tables in its own order, and a page
	// read of the same tenant may deadlock with it: PostgreSQL ends one,
	// and a few tries get through (as dropTenant's).
	for range 5 {
		err = pg.WithTx(ctx, pool, func(tx *sql.Tx) error {
			var roleExists bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, RoleOf(a.opts, e.ID)).Scan(&roleExists); err != nil {
				return err
			}
			stmts := []string{"DROP SCHEMA IF EXISTS " + schema + " CASCADE"}
			if roleExists {
				stmts = append(stmts, "DROP OWNED BY "+role, "DROP ROLE "+role)
			}
			for _, stmt := range stmts {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", stmt, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM public.accounts WHERE id = $1`, int64(e.ID)); err != nil {
				return fmt.Errorf("delete account %d: %w", e.ID, err)
			}
			return nil
		})
		if !pg.IsPgError(err, "40P01") {
			break
		}
	}
	if err != nil {
		return e, fmt.Errorf("tenant %s: %w; nothing was deleted", slug, pg.Classify(err))
	}
	return e, nil
}
