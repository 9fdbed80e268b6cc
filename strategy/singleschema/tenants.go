package singleschema

import (
	"context"
	"database/sql"
	"fmt"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/accountdir"
	"tenancy/strategy/internal/pg"
)

// singleschema's directory is the accounts table: a tenant is its account
// row and the rows that carry its account_id.

// tenantRowsTables are the tables with an account_id, children first: the
// order a tenant's rows are deleted in (the foreign keys RESTRICT).
var tenantRowsTables = []string{"subtasks", "tasks", "projects", "users", "subtask_counts", "accounts"}

func (a *Admin) entryOf(id models.TenantID, slug, name string) strategy.TenantEntry {
	return strategy.TenantEntry{ID: id, Slug: slug, Name: name,
		Location: fmt.Sprintf("account %d in database %s", id, a.opts.Database),
		Holds:    []string{fmt.Sprintf("account %d and every row with account_id %d (users, projects, tasks, subtasks, its subtask count) in database %s", id, id, a.opts.Database)},
	}
}

// directory is singleschema's: the accounts table, read by an admin that
// row-level security lets see every account.
func (a *Admin) directory() accountdir.Directory {
	return accountdir.Directory{
		Pool: func() (*sql.DB, error) { pool, _, err := a.conn(); return pool, err },
		Check: func(ctx context.Context, pool *sql.DB) error {
			return audit.AdminRole(ctx, pool, strategy.SingleSchema, audit.SingleSchemaAdminWhy)
		},
		Entry: a.entryOf,
		Create: func(ctx context.Context, acct models.Account) error {
			return a.CreateTenant(ctx, acct, true, func(*gorm.DB) error { return nil })
		},
		OneDatabase: "every singleschema tenant is in database " + a.opts.Database,
	}
}

// DeleteTenant deletes the account and every row of it in one
// transaction, as the admin (whom row-level security lets through), each
// statement naming the account: all of it goes, or nothing.
func (a *Admin) DeleteTenant(ctx context.Context, slug string) (strategy.TenantEntry, error) {
	e, err := a.LookUpTenant(ctx, slug)
	if err != nil {
		return e, err
	}
	pool, _, err := a.conn()
	if err != nil {
		return e, err
	}
	err = pg.WithTx(ctx, pool, func(tx *sql.Tx) error {
		for _, table := range tenantRowsTables {
			col := "account_id"
			if table == "accounts" {
				col = "id"
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM public."+table+" WHERE "+col+" = $1", int64(e.ID)); err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
		}
		return nil
	})
	if err != nil {
		return e, fmt.Errorf("tenant %s: %w; nothing was deleted", slug, pg.Classify(err))
	}
	return e, nil
}
