// Package singleschema keeps every tenant in one shared schema: account_id
// on every table, a gorm tenant scope that every query on a tenanted model
// must carry (scope.go), and row-level security, driven by a
// transaction-local setting, as the fail-safe. The server's side is Server
// (server.go, and the page read in pages.go); setup, migrations and loads
// are Admin's (admin.go, bulkload.go).
package singleschema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"sync/atomic"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/internal/tenantcache"
	"tenancy/strategy/singleschema/migrations"
)

// Server serves every tenant from one database. Tenant work runs as
// the app role inside a transaction that first sets app.tenant_id
// transaction-locally; the all-tenants view runs as the read-only reader
// role, on its own pool.
type Server struct {
	opts     strategy.Options
	app      *gorm.DB
	reader   *gorm.DB
	pools    []*sql.DB
	conns    [2]pg.ConnCounts // pools[0]'s (app) and pools[1]'s (reader), for PoolStats
	accounts *tenantcache.Cache[models.Account]
	pages    pages.Statements
	// Operators and sign-outs, kept outside every tenant (public schema,
	// no row-level security), read as the app role.
	operators.Gate
	// appTurns and readerTurns order the page reads on each pool.
	appTurns, readerTurns pg.Turns
	// citus: the tenants' rows are on Citus workers (subtasks is
	// distributed, as found at Open and whenever requireCurrent reads the
	// schema: see findPlacement). Citus passes the tenant setting on to
	// the workers only as SET LOCAL in a transaction block (see
	// setTenant).
	citus atomic.Bool
	// workers reads tenants' pages on their Citus workers (nil with
	// Options.CoordinatorReads).
	workers *workerReads
	// sessions begin the connections of both pools as the tables'
	// placement wants them, and retire those opened for another.
	sessions pg.Sessions
	// sessionLevelTenant makes tx set app.tenant_id for the rest of the
	// connection's session instead of the transaction. It is wrong, and
	// nothing in the package sets it: only tests do (export_test.go),
	// to show what transaction-local settings prevent.
	sessionLevelTenant bool
	// upgraded remembers that the shared schema was found at the version
	// this code needs.
	upgraded audit.Memo
}

// Open connects the web server's side of singleschema, as the app role
// (and the all-tenants reader). It refuses roles and a database that would
// not keep tenants apart (audit.RuntimeRole, audit.Reader,
// audit.SingleSchemaServer): ErrUnsafeRole or ErrUnsafeDeployment.
func Open(ctx context.Context, opts strategy.Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	if err := s.checkRoles(ctx); err != nil {
		s.Close()
		return nil, err
	}
	distributed, err := pg.IsDistributed(ctx, s.pools[0], "public.subtasks")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.placeRows(distributed)
	return s, nil
}

// newServer opens the pools; nothing connects until they are used.
func newServer(opts strategy.Options) (*Server, error) {
	s := &Server{opts: opts, accounts: tenantcache.New[models.Account](tenantcache.TTL, tenantcache.MaxEntries)}
	budget := opts.Budget()
	s.appTurns, s.readerTurns = pg.NewTurns(budget), pg.NewTurns(budget)
	appPool, err := pg.OpenCountedPoolWith(opts.AppDSN(opts.Database), budget, budget, &s.conns[0], &s.sessions)
	if err != nil {
		return nil, err
	}
	s.pools = append(s.pools, appPool)
	s.Gate = operators.Gate{DB: appPool}
	readerPool, err := pg.OpenCountedPoolWith(opts.ReaderDSN(opts.Database), budget, budget, &s.conns[1], &s.sessions)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.pools = append(s.pools, readerPool)
	if !opts.CoordinatorReads {
		s.workers = newWorkerReads(opts, budget, &s.sessions)
	}
	if s.app, err = newScopedGorm(appPool, opts); err == nil {
		s.reader, err = newScopedGorm(readerPool, opts)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkRoles refuses roles that could bypass row-level security and
// policies that would not keep tenants apart.
func (s *Server) checkRoles(ctx context.Context) error {
	if err := audit.RuntimeRole(ctx, s.pools[0]); err != nil {
		return err
	}
	if err := audit.Reader(ctx, s.pools[1], s.opts); err != nil {
		return err
	}
	return audit.SingleSchemaServer(ctx, s.pools[0], s.opts)
}

// newScopedGorm is a gorm root on which the tenant scope is mandatory.
func newScopedGorm(pool gorm.ConnPool, opts strategy.Options) (*gorm.DB, error) {
	return pg.NewGorm(pool, opts.Log(), tenantScope{})
}

func (s *Server) Name() string { return strategy.SingleSchema }

// setTenant binds the transaction to a tenant for row-level security. The
// third argument of set_config (is_local, always true outside tests) ends
// the setting with the transaction, so it never survives on a pooled
// connection; the value is a bind parameter.
//
// On a Citus coordinator the rows are read on the workers, and Citus
// passes set_config() on to none of them: they would see no tenant and
// serve nothing. It passes on SET LOCAL made in a transaction block with
// citus.propagate_set_commands = 'local', which app_set_tenant() does
// (migration 00009), as tx and readInOneTrip run it.
func setTenant(tx *gorm.DB, id int64, how tenantSetting) error {
	if err := tx.Exec(how.sql(), how.arg(id)).Error; err != nil {
		return fmt.Errorf("set tenant: %w", err)
	}
	return nil
}

// tenantSetting is how a transaction sets its tenant.
type tenantSetting int

const (
	// transactionLocal: set_config(..., true), on plain PostgreSQL.
	transactionLocal tenantSetting = iota
	// citusLocal: app_set_tenant(), SET LOCAL passed on to Citus's workers.
	citusLocal
	// sessionLevel: set_config(..., false), the mistake only tests make.
	sessionLevel
)

func (s *Server) tenantSetting() tenantSetting {
	switch {
	case s.sessionLevelTenant:
		return sessionLevel
	case s.citus.Load():
		return citusLocal
	}
	return transactionLocal
}

func (h tenantSetting) sql() string {
	switch h {
	case citusLocal:
		return "SELECT app_set_tenant($1)"
	case sessionLevel:
		return "SELECT set_config('app.tenant_id', $1, false)"
	}
	return "SELECT set_config('app.tenant_id', $1, true)"
}

func (h tenantSetting) arg(id int64) any {
	if h == citusLocal {
		return id
	}
	return strconv.FormatInt(id, 10)
}

// Tx is not tried again after a shard split, as the package's own reads
// are (tx): fn is the caller's, and may not be safe to run twice.
func (s *Server) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.asTenant(ctx, func(t models.Account) error { return s.txOnce(ctx, t, nil, fn) })
}

// tx runs fn in a transaction bound to the context's tenant, and once
// more when Citus replaced a shard it was planned on before it committed
// (pg.AgainAfterSplit; see pipe). fn must be safe to run twice: it sets
// its results, never adds to them.
func (s *Server) tx(ctx context.Context, opts *sql.TxOptions, fn func(tx *gorm.DB) error) error {
	return s.asTenant(ctx, func(t models.Account) error {
		return pg.OnceMoreAfterSplit(func() error { return s.txOnce(ctx, t, opts, fn) })
	})
}

// txOnce is one transaction of tx. A failure in it is marked
// pg.NotCommitted: gorm rolls back when fn fails, and commits only
// when it did not.
func (s *Server) txOnce(ctx context.Context, t models.Account, opts *sql.TxOptions, fn func(tx *gorm.DB) error) error {
	var failed error
	err := s.app.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if failed = setTenant(tx, int64(t.ID), s.tenantSetting()); failed != nil {
			return failed
		}
		failed = fn(tx)
		return failed
	}, opts)
	if failed != nil {
		return pg.NotCommitted(err)
	}
	return err
}

// asTenant runs fn, the tenant work of a transaction or a pipeline, for
// the context's tenant once the shared schema is current, and words its
// errors for that tenant.
func (s *Server) asTenant(ctx context.Context, fn func(t models.Account) error) error {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.ErrNoTenant
	}
	if err := s.requireCurrent(ctx, t); err != nil {
		return err
	}
	err := fn(t)
	if pg.IsPgError(err, "23503") {
		// A row written for an account that is not there: the tenant may
		// have been deleted while the server remembered it.
		if gone := s.goneError(ctx, t); gone != nil {
			return gone
		}
	}
	if err != nil {
		return fmt.Errorf("tenant %s: %w", t.Slug, pg.Classify(err))
	}
	return nil
}

// goneError is ErrTenantNotFound when tenant t's account has been deleted
// (ErrUnavailable, try again, when its slug names another account by
// now), and the server forgets t; nil while t is still there, or when
// that cannot be told. The server remembers an account for a few seconds
// (tenantcache.TTL), in which a deleted tenant's id scopes every read to
// nothing: a read that finds nothing asks, so that the tenant is a 404 at
// once rather than an empty tenant until the cache forgets it.
func (s *Server) goneError(ctx context.Context, t models.Account) error {
	if ctx.Err() != nil {
		return nil
	}
	now, err := s.lookUpTenant(ctx, t.Slug)
	switch {
	case errors.Is(err, strategy.ErrTenantNotFound):
		s.forget(t.Slug)
		return fmt.Errorf("%w: %q was deleted", strategy.ErrTenantNotFound, t.Slug)
	case err == nil && now.ID != t.ID:
		s.forget(t.Slug)
		return fmt.Errorf("%w: tenant %s: the address now names another account, try again", strategy.ErrUnavailable, t.Slug)
	}
	return nil
}

// forget drops what the server remembers of tenant slug.
func (s *Server) forget(slug string) {
	s.accounts.Forget(slug)
	s.pages.Forget(slug)
}

// requireCurrent answers ErrTenantUpgrading while the shared schema is
// behind this code (a migration failed or has not run yet): every tenant
// shares it, so every tenant waits for it. It is read again on each
// request until it is current, then never again; that once, the server
// also finds where the tables are (findPlacement).
func (s *Server) requireCurrent(ctx context.Context, t models.Account) error {
	err := s.upgraded.Check("public", func() error {
		if err := pg.RequireCurrent(ctx, s.pools[0], s.migrations(), "public"); err != nil {
			return err
		}
		return s.findPlacement(ctx)
	})
	if err != nil {
		return fmt.Errorf("tenant %s: %w", t.Slug, pg.Classify(err))
	}
	return nil
}

// migrations are the shared schema's migrations this server's code has.
func (s *Server) migrations() fs.FS {
	return pg.WithoutNewest(migrations.FS(), s.opts.HoldBackMigrations)
}

// findPlacement finds, once the shared schema is current, whether the
// tenants' tables are distributed over Citus's workers, and sets the
// server to serve them there (placeRows). A server opened while they were
// still on the coordinator (a deployment behind this code, whose migrate
// then distributes them) so takes on the Citus way when it first finds
// the schema current, without a restart and without a catalog query per
// request. On a Citus database whose schema is at a distributable version
// but not distributed yet, setup is between the migration and the
// distribution: tenants wait for it as for a migration.
func (s *Server) findPlacement(ctx context.Context) error {
	citus, err := pg.IsCitus(ctx, s.pools[0])
	if err != nil {
		return err
	}
	distributed := false
	if citus {
		if distributed, err = pg.IsDistributed(ctx, s.pools[0], "public.subtasks"); err != nil {
			return err
		}
		versions, err := pg.Versions(s.migrations())
		if err != nil {
			return err
		}
		if !distributed && len(versions) > 0 && versions[len(versions)-1] >= distributableVersion {
			return fmt.Errorf("%w: its tables are being distributed over the Citus workers; `tenancy migrate` finishes it", strategy.ErrTenantUpgrading)
		}
	}
	s.placeRows(distributed)
	return nil
}

// placeRows sets the server to serve tables that are distributed over
// Citus's workers, or not: the tenant setting (tenantSetting), and how
// both pools' connections begin. When that changes, the connections
// opened before are retired (pg.Sessions): their sessions took the
// runtime roles' settings as they were at login, and one from before
// setup distributed the tables plans each statement once for every tenant,
// which Citus cannot route ("could not create distributed plan").
func (s *Server) placeRows(distributed bool) {
	if s.citus.Swap(distributed) == distributed {
		return
	}
	if !distributed {
		s.sessions.Renew()
		return
	}
	// A session takes the roles' settings at login, and setup gives them
	// just before it distributes the tables: a connection made before is
	// given them here.
	var setup []string
	for _, kv := range pg.CitusRoleSettings() {
		if kv[0] == "plan_cache_mode" {
			setup = append(setup, fmt.Sprintf("SET %s = %s", kv[0], kv[1]))
		}
	}
	s.sessions.Renew(setup...)
}

// slugSyntax keeps obviously invalid slugs away from the database.
var slugSyntax = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func (s *Server) TenantBySlug(ctx context.Context, slug string) (models.Account, error) {
	if len(slug) > 63 || !slugSyntax.MatchString(slug) {
		return models.Account{}, fmt.Errorf("%w: %q", strategy.ErrTenantNotFound, slug)
	}
	return s.accounts.Get(ctx, slug, s.lookUpTenant)
}

func (s *Server) lookUpTenant(ctx context.Context, slug string) (models.Account, error) {
	// One statement, no explicit transaction: the reader's transactions are
	// read-only by default, and this runs on every request.
	var acct models.Account
	err := s.reader.WithContext(models.NewContextForAllTenants(ctx)).Where("slug = ?", slug).Take(&acct).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return models.Account{}, fmt.Errorf("%w: %q", strategy.ErrTenantNotFound, slug)
	case err != nil:
		return models.Account{}, fmt.Errorf("look up tenant %q: %w", slug, pg.Classify(err))
	}
	return acct, nil
}

func (s *Server) Tenants(ctx context.Context) ([]models.Account, error) {
	var accts []models.Account
	err := s.reader.WithContext(models.NewContextForAllTenants(ctx)).Order("id").Find(&accts).Error
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", pg.Classify(err))
	}
	return accts, nil
}

func (s *Server) Ping(ctx context.Context) error { return pg.PingAll(ctx, s.opts.Database, s.pools) }

func (s *Server) Close() error {
	err := pg.CloseAll(s.pools)
	if s.workers != nil {
		err = errors.Join(err, s.workers.close())
	}
	return err
}
