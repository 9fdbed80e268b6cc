package singleschema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
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

func (a *Admin) ListTenants(ctx context.Context) ([]strategy.TenantEntry, error) {
	return a.tenants(ctx, "")
}

func (a *Admin) LookUpTenant(ctx context.Context, slug string) (strategy.TenantEntry, error) {
	out, err := a.tenants(ctx, slug)
	if err != nil {
		return strategy.TenantEntry{}, err
	}
	if len(out) == 0 {
		return strategy.TenantEntry{}, fmt.Errorf("%w: %q has no account", strategy.ErrTenantNotFound, slug)
	}
	return out[0], nil
}

// tenants lists the accounts, or slug's alone when slug is not empty.
func (a *Admin) tenants(ctx context.Context, slug string) ([]strategy.TenantEntry, error) {
	pool, _, err := a.conn()
	if err != nil {
		return nil, err
	}
	if err := audit.AdminRole(ctx, pool, strategy.SingleSchema, audit.SingleSchemaAdminWhy); err != nil {
		return nil, err
	}
	rows, err := pool.QueryContext(ctx, `SELECT id, slug, name FROM public.accounts WHERE $1 = '' OR slug = $1 ORDER BY slug`, slug)
	if err != nil {
		return nil, fmt.Errorf("list the accounts: %w", pg.Classify(err))
	}
	defer rows.Close()
	var out []strategy.TenantEntry
	for rows.Next() {
		var id models.TenantID
		var s, name string
		if err := rows.Scan(&id, &s, &name); err != nil {
			return nil, err
		}
		out = append(out, a.entryOf(id, s, name))
	}
	return out, rows.Err()
}

// AddTenant writes the account, with no rows of its own yet.
func (a *Admin) AddTenant(ctx context.Context, spec strategy.TenantSpec) (strategy.TenantEntry, error) {
	if err := strategy.ValidateSlug(spec.Slug); err != nil {
		return strategy.TenantEntry{}, err
	}
	if spec.Host != "" || spec.Port != 0 {
		return strategy.TenantEntry{}, fmt.Errorf("tenant %s: another server: %w (every singleschema tenant is in database %s)", spec.Slug, strategy.ErrNotSupported, a.opts.Database)
	}
	if _, err := a.LookUpTenant(ctx, spec.Slug); err == nil {
		return strategy.TenantEntry{}, fmt.Errorf("%w: %q has an account; nothing was written", strategy.ErrTenantExists, spec.Slug)
	} else if !errors.Is(err, strategy.ErrTenantNotFound) {
		return strategy.TenantEntry{}, err
	}
	err := a.CreateTenant(ctx, models.Account{Slug: spec.Slug, Name: spec.Name}, true, func(*gorm.DB) error { return nil })
	if pg.IsPgError(err, "23505") {
		return strategy.TenantEntry{}, fmt.Errorf("%w: %q was created meanwhile; nothing was written", strategy.ErrTenantExists, spec.Slug)
	}
	if err != nil {
		return strategy.TenantEntry{}, err
	}
	return a.LookUpTenant(ctx, spec.Slug)
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
