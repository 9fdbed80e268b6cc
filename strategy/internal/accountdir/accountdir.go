// Package accountdir is the tenant directory of the strategies whose
// tenants are the accounts of one database (multischema, singleschema):
// listing, looking up and adding a tenant read and write the accounts
// table; what else a tenant is (a schema and a role, or rows) each
// strategy says through the functions it gives.
package accountdir

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// Directory reads and adds tenants through one database's accounts. A
// strategy's Admin embeds it, so its methods are the Admin's.
type Directory struct {
	// Pool is the admin's pool on the database.
	Pool func() (*sql.DB, error)
	// Check, when set, runs before the accounts are read (singleschema's
	// admin must be one that row-level security lets see every account).
	Check func(ctx context.Context, pool *sql.DB) error
	// Entry describes the tenant of account id: where it is, what a
	// delete would remove.
	Entry func(id models.TenantID, slug, name string) strategy.TenantEntry
	// Create writes the account and whatever else the tenant is, all or
	// nothing.
	Create func(ctx context.Context, acct models.Account) error
	// OneDatabase says, to refuse a tenant on another server, where every
	// tenant of the strategy is.
	OneDatabase string
}

// ListTenants lists every tenant, by slug.
func (d Directory) ListTenants(ctx context.Context) ([]strategy.TenantEntry, error) {
	return d.accounts(ctx, "")
}

// LookUpTenant returns slug's tenant, or ErrTenantNotFound.
func (d Directory) LookUpTenant(ctx context.Context, slug string) (strategy.TenantEntry, error) {
	out, err := d.accounts(ctx, slug)
	if err != nil {
		return strategy.TenantEntry{}, err
	}
	if len(out) == 0 {
		return strategy.TenantEntry{}, fmt.Errorf("%w: %q has no account", strategy.ErrTenantNotFound, slug)
	}
	return out[0], nil
}

// accounts lists the accounts, or slug's alone when slug is not empty.
func (d Directory) accounts(ctx context.Context, slug string) ([]strategy.TenantEntry, error) {
	pool, err := d.Pool()
	if err != nil {
		return nil, err
	}
	if d.Check != nil {
		if err := d.Check(ctx, pool); err != nil {
			return nil, err
		}
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
		out = append(out, d.Entry(id, s, name))
	}
	return out, rows.Err()
}

// AddTenant creates a tenant with no rows of its own yet, refusing a slug that
// is taken (nothing written) and another server.
func (d Directory) AddTenant(ctx context.Context, spec strategy.TenantSpec) (strategy.TenantEntry, error) {
	if err := strategy.ValidateSlug(spec.Slug); err != nil {
		return strategy.TenantEntry{}, err
	}
	if spec.Host != "" || spec.Port != 0 {
		return strategy.TenantEntry{}, fmt.Errorf("tenant %s: another server: %w (%s)", spec.Slug, strategy.ErrNotSupported, d.OneDatabase)
	}
	if _, err := d.LookUpTenant(ctx, spec.Slug); err == nil {
		return strategy.TenantEntry{}, fmt.Errorf("%w: %q has an account; nothing was written", strategy.ErrTenantExists, spec.Slug)
	} else if !errors.Is(err, strategy.ErrTenantNotFound) {
		return strategy.TenantEntry{}, err
	}
	err := d.Create(ctx, models.Account{Slug: spec.Slug, Name: spec.Name})
	if pg.IsPgError(err, "23505") {
		return strategy.TenantEntry{}, fmt.Errorf("%w: %q was created meanwhile; nothing was written", strategy.ErrTenantExists, spec.Slug)
	}
	if err != nil {
		return strategy.TenantEntry{}, err
	}
	return d.LookUpTenant(ctx, spec.Slug)
}
