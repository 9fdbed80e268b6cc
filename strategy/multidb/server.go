// Package multidb keeps each tenant in a database of its own: plain
// single-tenant tables, a small connection pool per tenant database opened
// on demand inside a shared budget (pools.go), each tenant database audited
// before its tenant is served. The server's side is Server (server.go, and
// the page read in pages.go); setup, migrations and loads are Admin's
// (admin.go).
package multidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/claim"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/internal/tenantcache"
	"tenancy/strategy/multidb/migrations"
)

// Server serves each tenant from its own database. One gorm root holds the
// callbacks and schema cache; each unit of work swaps in the tenant's pool,
// as gorm's own Connection does.
type Server struct {
	opts     strategy.Options
	base     *sql.DB // the PGDATABASE Database: health checks only
	root     *gorm.DB
	pools    *tenantPools
	conns    *connCounts // for PoolStats
	accounts *tenantcache.Cache
	pages    pages.Statements
	// audited remembers the tenant databases that passed auditTenant.
	audited audit.Memo
}

// Open connects the web server's side of multidb, as the app role. It
// refuses a role that could reach past the tenant databases
// (audit.RuntimeRole); each tenant database is audited the first time the
// server serves its tenant.
func Open(ctx context.Context, opts strategy.Options) (*Server, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	conns := new(connCounts)
	base, err := pg.OpenCountedPool(opts.AppDSN(opts.Database), 2, 1, &conns.base)
	if err != nil {
		return nil, err
	}
	if err := audit.RuntimeRole(ctx, base); err != nil {
		base.Close()
		return nil, err
	}
	maxOpen := opts.TenantConns
	if maxOpen == 0 {
		var allowed int
		err := base.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int
			- current_setting('superuser_reserved_connections')::int`).Scan(&allowed)
		if err != nil {
			base.Close()
			return nil, fmt.Errorf("read max_connections to size the tenant pools (or set MULTIDB_OPEN_CONNS): %w", pg.Classify(err))
		}
		maxOpen = TenantConnsFor(opts, allowed)
	}
	root, err := newMultiDBGorm(base, opts)
	if err != nil {
		base.Close()
		return nil, err
	}
	return &Server{
		opts:     opts,
		base:     base,
		conns:    conns,
		root:     root,
		accounts: tenantcache.New(tenantcache.TTL, tenantcache.MaxEntries),
		pools: newTenantPools(opts.Budget(), maxOpen, poolWait, func(database string) (*sql.DB, error) {
			return pg.OpenCountedPool(opts.AppDSN(database), opts.Budget(), opts.Budget(), &conns.tenants)
		}),
	}, nil
}

// poolWait is how long a request waits for a tenant connection when the
// whole budget is busy.
const poolWait = 5 * time.Second

func newMultiDBGorm(pool gorm.ConnPool, opts strategy.Options) (*gorm.DB, error) {
	return pg.NewGorm(pool, opts.Log(), claim.OwnTables{})
}

func (m *Server) Name() string { return strategy.MultiDB }

// database returns the tenant database of slug, or ErrTenantNotFound.
func (m *Server) database(slug string) (string, error) {
	i, ok := strategy.ParseSlug(slug)
	if !ok || i >= m.opts.TenantCount {
		return "", fmt.Errorf("%w: %q", strategy.ErrTenantNotFound, slug)
	}
	return m.opts.TenantDatabase(i), nil
}

// withTenantDB runs fn on a session bound to the tenant database's pool.
func (m *Server) withTenantDB(ctx context.Context, slug string, fn func(db *gorm.DB) error) error {
	database, err := m.database(slug)
	if err != nil {
		return err
	}
	pool, release, err := m.pools.acquire(ctx, database)
	if err != nil {
		return err
	}
	defer release()
	err = m.audited.Check(database, func() error { return m.auditTenant(ctx, pool, database) })
	if err == nil {
		db := m.root.Session(&gorm.Session{NewDB: true, Context: ctx})
		db.Statement.ConnPool = pool
		err = fn(db)
	}
	if err != nil {
		switch {
		case errors.Is(err, strategy.ErrUnsafeDeployment):
			return fmt.Errorf("%w: tenant %s: %w", strategy.ErrTenantUnavailable, slug, err)
		case pg.IsPgError(err, "42501") && !pg.IsRLSViolation(err):
			return fmt.Errorf("%w: tenant %s: the app role lacks a privilege in database %q (`tenancy check` lists it; `tenancy migrate` grants it): %w", strategy.ErrTenantUnavailable, slug, database, err)
		case pg.IsPgError(err, "3D000"):
			return fmt.Errorf("%w: tenant %s: database %q is missing (run `tenancy setup`): %w", strategy.ErrTenantUnavailable, slug, database, err)
		case pg.TenantDatabaseUnreachable(err):
			return fmt.Errorf("%w: tenant %s: database %q refuses connections: %w", strategy.ErrTenantUnavailable, slug, database, err)
		}
		return fmt.Errorf("tenant %s: %w", slug, pg.Classify(err))
	}
	return nil
}

// auditTenant checks a tenant database before the server serves that
// tenant for the first time (see audit.MultiDBTenant). A finding makes
// that tenant unavailable (503), not the server.
func (m *Server) auditTenant(ctx context.Context, pool *sql.DB, database string) error {
	if err := audit.MultiDBTenant(ctx, pool, database, m.opts); err != nil {
		m.opts.Log().Error("tenant database refused", "database", database, "err", err)
		return err
	}
	// A tenant whose migration failed, or has not reached it yet, is
	// behind this code: served 503 until it is current, and checked again
	// on its next request (only a pass is remembered).
	return pg.RequireCurrent(ctx, pool, pg.WithoutNewest(migrations.FS(), m.opts.HoldBackMigrations), "public")
}

func (m *Server) TenantBySlug(ctx context.Context, slug string) (models.Account, error) {
	return m.accounts.Get(ctx, slug, m.lookUpTenant)
}

func (m *Server) lookUpTenant(ctx context.Context, slug string) (models.Account, error) {
	var acct models.Account
	err := m.withTenantDB(ctx, slug, func(db *gorm.DB) error {
		return db.Take(&acct).Error
	})
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return acct, fmt.Errorf("%w: %q has a database but no account yet (run `tenancy seed`)", strategy.ErrTenantNotFound, slug)
	case err != nil:
		return acct, err
	case acct.Slug != slug:
		return models.Account{}, fmt.Errorf("tenant %s: its database holds account %q", slug, acct.Slug)
	}
	return acct, nil
}

func (m *Server) Tenants(context.Context) ([]models.Account, error) {
	out := make([]models.Account, m.opts.TenantCount)
	for i := range out {
		out[i] = models.Account{Slug: strategy.Slug(i)}
	}
	return out, nil
}

func (m *Server) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return m.tx(ctx, nil, fn)
}

func (m *Server) tx(ctx context.Context, opts *sql.TxOptions, fn func(tx *gorm.DB) error) error {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.ErrNoTenant
	}
	return m.withTenantDB(ctx, t.Slug, func(db *gorm.DB) error {
		return db.Transaction(fn, opts)
	})
}

func (m *Server) Ping(ctx context.Context) error {
	if err := m.base.PingContext(ctx); err != nil {
		return pg.Classify(fmt.Errorf("ping %s: %w", m.opts.Database, err))
	}
	return nil
}

func (m *Server) Close() error {
	return errors.Join(m.pools.close(), m.base.Close())
}
