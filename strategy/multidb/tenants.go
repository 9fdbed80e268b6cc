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
	err = pg.WithMaintenance(ctx, o, func(m *sql.DB) error {
		_, err := m.ExecContext(ctx, "CREATE DATABASE "+pg.QuoteIdent(database)+" TEMPLATE "+pg.QuoteIdent(a.templateDatabase()))
		return err
	})
	switch {
	case pg.IsPgError(err, "42P04"):
		return strategy.TenantEntry{}, fmt.Errorf("%w: %s exists but is not in the directory; nothing was written (drop it, after checking what it holds, or choose another slug)",
			strategy.ErrTenantExists, e.Location(a.opts))
	case err != nil:
		return strategy.TenantEntry{}, fmt.Errorf("tenant %s: create %s: %w", spec.Slug, e.Location(a.opts), pg.Classify(err))
	}
	if err := a.completeTenant(ctx, pool, &e); err != nil {
		// Only the database made above goes: the directory row, if the
		// insert raced another, is the other's.
		drop, cancel := pg.WithTimeout(context.WithoutCancel(ctx))
		defer cancel()
		if derr := dropDatabase(drop, o, database); derr != nil {
			return strategy.TenantEntry{}, fmt.Errorf("%w; and dropping %s again failed too: %w (drop it by hand)", err, e.Location(a.opts), derr)
		}
		return strategy.TenantEntry{}, err
	}
	return a.entryOf(e), nil
}

// completeTenant migrates, grants and audits e's new database, writes its
// account, and lists it.
func (a *Admin) completeTenant(ctx context.Context, base *sql.DB, e *directory.Entry) error {
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
	name := e.Name
	if err := a.createAccount(ctx, *e, models.Account{ID: e.ID, Slug: e.Slug, Name: name}, true, nil); err != nil {
		return err
	}
	inserted, err := directory.Insert(ctx, base, *e)
	if err != nil {
		return err
	}
	*e = inserted
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
