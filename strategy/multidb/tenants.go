package multidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multidb/directory"
)

// A multidb tenant is a database, on the deployment's server or another,
// and its row in the directory (package directory). The row is written
// last and removed last: a tenant is served only once its database is
// complete, and a delete that fails half-way is finished by running it
// again.

// entryOf is e as package strategy lists it.
func (a *Admin) entryOf(e directory.Entry) strategy.TenantEntry {
	return strategy.TenantEntry{
		ID: e.ID, Slug: e.Slug, Name: e.Name, Location: e.Location(a.opts),
		Host: e.Host, Port: e.Port, Database: e.Database, CreatedAt: e.CreatedAt,
		Holds: []string{e.Location(a.opts), fmt.Sprintf("its row in the tenant directory of %s", a.opts.Database)},
	}
}

func (a *Admin) ListTenants(ctx context.Context) ([]strategy.TenantEntry, error) {
	entries, err := a.tenants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]strategy.TenantEntry, len(entries))
	for i, e := range entries {
		out[i] = a.entryOf(e)
	}
	return out, nil
}

func (a *Admin) LookUpTenant(ctx context.Context, slug string) (strategy.TenantEntry, error) {
	e, err := a.entry(ctx, slug)
	if err != nil {
		return strategy.TenantEntry{}, err
	}
	return a.entryOf(e), nil
}

// tenantDatabaseOf names slug's database: <PGDATABASE>_<slug>, which is
// what setup has always named tenant-i's (<PGDATABASE>_tenant-i).
func (a *Admin) tenantDatabaseOf(slug string) (string, error) {
	name := a.opts.Database + "_" + slug
	if len(name) > maxIdentifierLength {
		return "", fmt.Errorf("slug %q: its database name %q would pass PostgreSQL's %d bytes; choose a shorter slug", slug, name, maxIdentifierLength)
	}
	return name, nil
}

// maxIdentifierLength is PostgreSQL's NAMEDATALEN-1.
const maxIdentifierLength = 63

// AddTenant copies the migrated template into a new database on the
// tenant's server (preparing that server first if it is another one),
// migrates, grants and audits it, writes the account, and only then lists
// the tenant in the directory. Anything that fails drops the database it
// made.
func (a *Admin) AddTenant(ctx context.Context, spec strategy.TenantSpec) (strategy.TenantEntry, error) {
	if err := strategy.ValidateSlug(spec.Slug); err != nil {
		return strategy.TenantEntry{}, err
	}
	if (spec.Host == "") != (spec.Port == 0) {
		return strategy.TenantEntry{}, fmt.Errorf("tenant %s: give both host and port of another server, or neither", spec.Slug)
	}
	database, err := a.tenantDatabaseOf(spec.Slug)
	if err != nil {
		return strategy.TenantEntry{}, err
	}
	pool, _, err := a.base.Get()
	if err != nil {
		return strategy.TenantEntry{}, err
	}
	if e, err := directory.Get(ctx, pool, spec.Slug); err == nil {
		return strategy.TenantEntry{}, fmt.Errorf("%w: %q is in the directory (%s); nothing was written", strategy.ErrTenantExists, spec.Slug, e.Location(a.opts))
	} else if !errors.Is(err, strategy.ErrTenantNotFound) {
		return strategy.TenantEntry{}, err
	}
	e := directory.Entry{Slug: spec.Slug, Name: spec.Name, Host: spec.Host, Port: spec.Port, Database: database}
	if e.Host == a.opts.Host && e.Port == a.opts.Port {
		e.Host, e.Port = "", 0 // the deployment's own server, however it was named
	}
	o := e.Server(a.opts)
	if e.Host != "" {
		if err := a.prepareServer(ctx, nil, o); err != nil {
			return strategy.TenantEntry{}, err
		}
	}
	if e.ID, err = directory.NextID(ctx, pool); err != nil {
		return strategy.TenantEntry{}, err
	}
	if err := a.createDatabase(ctx, e); err != nil {
		return strategy.TenantEntry{}, err
	}
	err = a.readyDatabase(ctx, e)
	if err == nil {
		err = a.createAccount(ctx, e, models.Account{ID: e.ID, Slug: e.Slug, Name: e.Name}, true, nil)
	}
	if err == nil {
		e, err = directory.Insert(ctx, pool, e)
	}
	if err != nil {
		return strategy.TenantEntry{}, a.dropAgain(ctx, e, err)
	}
	return a.entryOf(e), nil
}

// createDatabase makes e's database, a copy of the migrated template on
// e's server. A database of that name that is there already is refused:
// it is not the directory's (the caller looked), and may hold anything.
func (a *Admin) createDatabase(ctx context.Context, e directory.Entry) error {
	err := pg.WithMaintenance(ctx, e.Server(a.opts), func(m *sql.DB) error {
		_, err := m.ExecContext(ctx, "CREATE DATABASE "+pg.QuoteIdent(e.Database)+" TEMPLATE "+pg.QuoteIdent(a.templateDatabase()))
		return err
	})
	switch {
	case pg.IsPgError(err, "42P04"):
		return fmt.Errorf("%w: %s exists but is not in the directory; nothing was written (drop it, after checking what it holds, or choose another slug)",
			strategy.ErrTenantExists, e.Location(a.opts))
	case err != nil:
		return fmt.Errorf("tenant %s: create %s: %w", e.Slug, e.Location(a.opts), pg.Classify(err))
	}
	return nil
}

// readyDatabase migrates and grants e's new database and audits it as the
// server would before serving it.
func (a *Admin) readyDatabase(ctx context.Context, e directory.Entry) error {
	o := e.Server(a.opts)
	rep := strategy.DatabaseReport{Database: e.Database}
	if err := a.migrateDatabase(ctx, o, &rep, ""); err != nil {
		return fmt.Errorf("tenant %s: migrate %s: %w", e.Slug, e.Location(a.opts), err)
	}
	found, err := audit.MultiDBTenantDatabase(ctx, o, e.Database)
	if err != nil {
		return fmt.Errorf("tenant %s: audit %s: %w", e.Slug, e.Location(a.opts), err)
	}
	if len(found.Findings) > 0 {
		return fmt.Errorf("tenant %s: %w: %s: %v (the template %s is at fault; `tenancy check` says more)",
			e.Slug, strategy.ErrUnsafeDeployment, e.Location(a.opts), found.Findings, a.templateDatabase())
	}
	return nil
}

// dropAgain drops the database createDatabase made for e, after err
// stopped the tenant from being completed, and returns err. Only that
// database goes: the directory row, if its insert raced another's, is the
// other's.
func (a *Admin) dropAgain(ctx context.Context, e directory.Entry, err error) error {
	drop, cancel := pg.WithTimeout(context.WithoutCancel(ctx))
	defer cancel()
	if derr := dropDatabase(drop, e.Server(a.opts), e.Database); derr != nil {
		return fmt.Errorf("%w; and dropping %s again failed too: %w (drop it by hand)", err, e.Location(a.opts), derr)
	}
	return err
}

// loadNewTenant creates the tenant d is, which the directory does not
// list (an import under a slug of its own): its database as AddTenant
// makes one, on the deployment's server, then d loaded into it in one
// transaction, and the directory row last, so that the tenant is served
// only once complete. A failure anywhere, or a load not committed, drops
// the database again: nothing is left of the tenant.
func (a *Admin) loadNewTenant(ctx context.Context, d *strategy.TenantData, commit bool) error {
	slug := d.Account.Slug
	if err := strategy.ValidateSlug(slug); err != nil {
		return err
	}
	database, err := a.tenantDatabaseOf(slug)
	if err != nil {
		return err
	}
	pool, _, err := a.base.Get()
	if err != nil {
		return err
	}
	e := directory.Entry{ID: d.Account.ID, Slug: slug, Name: d.Account.Name, Database: database}
	if err := a.createDatabase(ctx, e); err != nil {
		return err
	}
	err = a.readyDatabase(ctx, e)
	if err == nil {
		err = a.withEntryPool(ctx, e, func(p *sql.DB) error {
			return pg.LoadTenant(ctx, p, pg.Layout{FixedIDs: true}, d, commit)
		})
	}
	if err == nil && commit {
		_, err = directory.Insert(ctx, pool, e)
	}
	if err != nil || !commit {
		return a.dropAgain(ctx, e, err)
	}
	return nil
}

// dropDatabase drops database on o's server; FORCE ends the sessions
// still in it (a server's pool).
func dropDatabase(ctx context.Context, o strategy.Options, database string) error {
	return pg.WithMaintenance(ctx, o, func(m *sql.DB) error {
		_, err := m.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pg.QuoteIdent(database)+" WITH (FORCE)")
		return pg.Classify(err)
	})
}

// DeleteTenant drops the tenant's database, then its directory row: a
// failure in between leaves the row, and running it again finishes.
func (a *Admin) DeleteTenant(ctx context.Context, slug string) (strategy.TenantEntry, error) {
	e, err := a.entry(ctx, slug)
	if err != nil {
		return strategy.TenantEntry{}, err
	}
	start := time.Now()
	if err := dropDatabase(ctx, e.Server(a.opts), e.Database); err != nil {
		return strategy.TenantEntry{}, fmt.Errorf("tenant %s: drop %s: %w; nothing else was removed, run it again", slug, e.Location(a.opts), err)
	}
	pool, _, err := a.base.Get()
	if err == nil {
		err = directory.Delete(ctx, pool, slug)
	}
	if err != nil {
		return strategy.TenantEntry{}, fmt.Errorf("tenant %s: its database is gone (%s) but %w; run it again", slug, time.Since(start).Round(time.Millisecond), err)
	}
	return a.entryOf(e), nil
}
