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
	"sync"
	"time"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/claim"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/internal/tenantcache"
	"tenancy/strategy/multidb/directory"
	"tenancy/strategy/multidb/migrations"
)

// Server serves each tenant from its own database. One gorm root holds the
// callbacks and schema cache; each unit of work swaps in the tenant's pool,
// as gorm's own Connection does.
type Server struct {
	opts strategy.Options
	base *sql.DB // the PGDATABASE database: the tenant directory, health checks
	// Operators and sign-outs, kept in the base database.
	operators.Gate
	root  *gorm.DB
	pools *tenantPools
	conns *connCounts // for PoolStats
	// accounts remembers, for each tenant database (directory key), the
	// account found in it, for verifiedTTL: while its directory row still
	// names that database and account, a request needs only the directory
	// (remembered for a few seconds) to know its tenant, not a turn of the
	// tenant database's pool before the one its page takes. Looked up in
	// the tenant database each time, a tenant whose pool was closed
	// between the two (one request in three or more at 1,000 tenant
	// databases) opened a second connection.
	accounts *tenantcache.Cache[models.Account]
	// entries remembers the directory's rows for a few seconds: a tenant
	// added is served at once (a slug not remembered is looked up), one
	// deleted within entries' TTL, or at once when its database is gone.
	entries *tenantcache.Cache[directory.Entry]
	// dsns holds the connection URL of each tenant database's key
	// (directory.Entry.Key), for the pools to open.
	dsns *sync.Map
	// keys is the key of each slug whose pool may be open, to close it
	// when the tenant leaves the directory.
	keys  sync.Map
	pages pages.Statements
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
	// The base database answers the directory lookups of every tenant
	// (each remembered for a few seconds): with one connection kept idle
	// of two, two lookups at once opened and closed a connection each
	// time, on top of the tenant databases' own.
	base, err := pg.OpenCountedPool(opts.AppDSN(opts.Database), 2, 2, &conns.base)
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
		// Sized for the tenants the directory lists now, when they
		// outnumber MULTIDB_COUNT (tenants created since setup): sized for
		// five, a server with five hundred would take turns on a few
		// connections.
		sizing := opts
		if entries, err := directory.List(ctx, base); err == nil {
			sizing.TenantCount = max(sizing.TenantCount, len(entries))
		}
		maxOpen = TenantConnsFor(sizing, allowed)
	}
	root, err := newMultiDBGorm(base, opts)
	if err != nil {
		base.Close()
		return nil, err
	}
	dsns := new(sync.Map)
	return &Server{
		opts:     opts,
		base:     base,
		Gate:     operators.Gate{DB: base},
		conns:    conns,
		root:     root,
		accounts: tenantcache.New[models.Account](verifiedTTL, tenantcache.MaxEntries),
		entries:  tenantcache.New[directory.Entry](tenantcache.TTL, tenantcache.MaxEntries),
		dsns:     dsns,
		pools: newTenantPools(opts.Budget(), maxOpen, poolWait, func(key string) (*sql.DB, error) {
			dsn, ok := dsns.Load(key)
			if !ok {
				return nil, fmt.Errorf("no connection URL for %s", key)
			}
			return pg.OpenCountedPool(dsn.(string), opts.Budget(), opts.Budget(), &conns.tenants)
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

// entry returns slug's row of the directory, remembered for a few
// seconds, or ErrTenantNotFound; a tenant that has left the directory has
// its pool closed.
func (m *Server) entry(ctx context.Context, slug string) (directory.Entry, error) {
	// No directory row has a slug that would not be accepted now, so
	// nothing else is worth a round trip (nor a NUL a query can carry).
	if strategy.ValidateSlug(slug) != nil {
		return directory.Entry{}, fmt.Errorf("%w: %q", strategy.ErrTenantNotFound, slug)
	}
	e, err := m.entries.Get(ctx, slug, func(ctx context.Context, slug string) (directory.Entry, error) {
		return directory.Get(ctx, m.base, slug)
	})
	if errors.Is(err, strategy.ErrTenantNotFound) {
		m.forget(slug)
	}
	return e, err
}

// forget drops what the server remembers of slug and closes its pool.
func (m *Server) forget(slug string) {
	m.entries.Forget(slug)
	m.pages.Forget(slug)
	if key, ok := m.keys.LoadAndDelete(slug); ok {
		m.accounts.Forget(key.(string))
		m.pools.forget(key.(string))
		m.audited.Forget(key.(string))
	}
}

// gone reports whether slug has left the directory, asking it afresh: a
// tenant database that is missing or refuses connections may be one that
// was deleted while the server remembered it.
func (m *Server) gone(ctx context.Context, slug string) bool {
	m.entries.Forget(slug)
	_, err := m.entry(ctx, slug)
	return errors.Is(err, strategy.ErrTenantNotFound)
}

// withTenantDB runs fn on a session bound to the tenant database's pool.
func (m *Server) withTenantDB(ctx context.Context, slug string, fn func(db *gorm.DB) error) error {
	e, err := m.entry(ctx, slug)
	if err != nil {
		return err
	}
	err = m.withEntryDB(ctx, e, fn)
	if err != nil && !errors.Is(err, strategy.ErrTenantNotFound) && ctx.Err() == nil && m.gone(ctx, slug) {
		return fmt.Errorf("%w: %q was deleted", strategy.ErrTenantNotFound, slug)
	}
	return err
}

func (m *Server) withEntryDB(ctx context.Context, e directory.Entry, fn func(db *gorm.DB) error) error {
	slug, key := e.Slug, e.Key()
	if _, ok := m.dsns.Load(key); !ok {
		m.dsns.Store(key, e.Server(m.opts).AppDSN(e.Database))
	}
	m.keys.Store(slug, key)
	pool, release, err := m.pools.acquire(ctx, key)
	if err != nil {
		return err
	}
	defer release()
	database := e.Database
	err = m.audited.Check(key, func() error { return m.auditTenant(ctx, pool, database) })
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
			return fmt.Errorf("%w: tenant %s: the app role lacks a privilege in database %q (`tenancy check` lists it; `tenancy migrate` grants it): %w", strategy.ErrTenantUnavailable, slug, key, err)
		case pg.IsPgError(err, "3D000"):
			return fmt.Errorf("%w: tenant %s: database %q is missing (run `tenancy setup`): %w", strategy.ErrTenantUnavailable, slug, key, err)
		case pg.TenantDatabaseUnreachable(err):
			return fmt.Errorf("%w: tenant %s: database %q refuses connections: %w", strategy.ErrTenantUnavailable, slug, key, err)
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

// verifiedTTL is how long the account found in a tenant database is taken
// as still there. The directory row, remembered for far less, says which
// database and account a slug names; a database made again under the same
// name holds an account with a new id, which the row names, and is looked
// up afresh.
const verifiedTTL = 10 * time.Minute

func (m *Server) TenantBySlug(ctx context.Context, slug string) (models.Account, error) {
	e, err := m.entry(ctx, slug)
	if err != nil {
		return models.Account{}, err
	}
	key := e.Key()
	load := func(ctx context.Context, _ string) (models.Account, error) { return m.lookUpTenant(ctx, slug) }
	acct, err := m.accounts.Get(ctx, key, load)
	if err == nil && (acct.Slug != slug || acct.ID != e.ID) {
		m.accounts.Forget(key)
		acct, err = m.accounts.Get(ctx, key, load)
	}
	return acct, err
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

// Tenants lists the directory (names as the directory has them: the
// tenants setup registered have theirs in their own databases).
func (m *Server) Tenants(ctx context.Context) ([]models.Account, error) {
	entries, err := directory.List(ctx, m.base)
	if err != nil {
		return nil, err
	}
	out := make([]models.Account, len(entries))
	for i, e := range entries {
		out[i] = models.Account{ID: e.ID, Slug: e.Slug, Name: e.Name}
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
