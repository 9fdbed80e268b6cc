// Package multischema keeps each tenant in a schema of its own
// (tenant_<account id>) in one database, as django-tenants and
// gorm-multitenancy do, with the directory of accounts in public. Each
// tenant has a role of its own, which may use its schema and no other; the
// server's app role owns nothing, uses no tenant schema itself, and takes
// on the tenant's role, with the tenant's schema first on the search_path,
// for one transaction at a time (set_config(..., true): nothing survives on
// a pooled connection, so it is safe behind PgBouncer in transaction mode).
// With no tenant set it resolves no tenant table; a statement that names
// another tenant's schema is refused by PostgreSQL. The server's side is
// Server (server.go, and the page reads in pages.go); setup, migrations
// per schema, tenants and loads are Admin's (admin.go, tenants.go).
package multischema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/claim"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/internal/tenantcache"
	"tenancy/strategy/multischema/migrations"
)

// Server serves every tenant from its schema of one database: tenant work
// runs as the app role in a transaction that first takes on the tenant's
// role and schema; the tenant lookup and the all-tenants list run as the
// read-only reader role, on its own pool.
type Server struct {
	opts     strategy.Options
	app      *gorm.DB
	reader   *gorm.DB
	pools    []*sql.DB
	conns    [2]pg.ConnCounts // pools[0]'s (app) and pools[1]'s (reader), for PoolStats
	accounts *tenantcache.Cache[models.Account]
	// Operators and sign-outs, kept in the public schema beside the
	// accounts, read as the app role itself (no tenant's role taken on).
	operators.Gate
	pages pages.Statements
	// appTurns and readerTurns order the page reads on each pool.
	appTurns, readerTurns pg.Turns
	// audited remembers the tenants whose schema passed the audit.
	audited audit.Memo
}

// Open connects the web server's side of multischema, as the app role and
// the reader. It refuses roles that could reach past the tenant schemas
// (audit.RuntimeRole, audit.MultiSchemaServer); each tenant's schema and
// role are audited the first time the server serves the tenant.
func Open(ctx context.Context, opts strategy.Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	s := &Server{opts: opts, accounts: tenantcache.New[models.Account](tenantcache.TTL, tenantcache.MaxEntries)}
	budget := opts.Budget()
	s.appTurns, s.readerTurns = pg.NewTurns(budget), pg.NewTurns(budget)
	// The app pool runs pgx's exec mode: its page reads prepare what they
	// keep themselves (readInOneTrip), and anything else it runs names
	// tables through a search_path that changes with every tenant, so
	// pgx's statement cache would only keep plans PostgreSQL must redo.
	appOpts := opts
	if s.prepares() {
		appOpts.QueryExecMode = "exec"
	}
	for i, dsn := range []string{appOpts.AppDSN(opts.Database), opts.ReaderDSN(opts.Database)} {
		pool, err := pg.OpenCountedPool(dsn, budget, budget, &s.conns[i])
		if err != nil {
			s.Close()
			return nil, err
		}
		s.pools = append(s.pools, pool)
	}
	s.Gate = operators.Gate{DB: s.pools[0]}
	var err error
	if s.app, err = pg.NewGorm(s.pools[0], opts.Log(), claim.OwnTables{}); err == nil {
		s.reader, err = pg.NewGorm(s.pools[1], opts.Log(), claim.OwnTables{})
	}
	if err == nil {
		err = audit.RuntimeRole(ctx, s.pools[0])
	}
	if err == nil {
		err = audit.MultiSchemaServer(ctx, s.pools[0], s.pools[1], opts)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) Name() string { return strategy.MultiSchema }

// SchemaOf is the schema that holds the tables of the tenant with id.
func SchemaOf(id models.TenantID) string { return "tenant_" + strconv.FormatInt(int64(id), 10) }

// RoleOf is the role of the tenant with id in the deployment of opts:
// roles are the cluster's, so it is named after the deployment's
// database.
func RoleOf(opts strategy.Options, id models.TenantID) string {
	return opts.Database + "_t" + strconv.FormatInt(int64(id), 10)
}

// TenantsRole is the role every tenant's role is a member of, which holds
// what they all need outside their schemas: USAGE on public and SELECT on
// public.accounts. Granted to each tenant's role instead, those would put
// an entry per tenant in one ACL, which every check on the table scans,
// and concurrent grants and revokes on one object fail ("tuple
// concurrently updated"); a membership is a row of its own.
func TenantsRole(opts strategy.Options) string { return opts.Database + "_tenants" }

// routeSQL takes on a tenant for the rest of the transaction: its role,
// and its schema first on the search_path (then public, for accounts).
// Both are transaction-local, so neither survives on a pooled connection.
const routeSQL = "SELECT set_config('role', $1, true), set_config('search_path', $2, true)"

func (s *Server) routeArgs(t models.Account) []any {
	return []any{RoleOf(s.opts, t.ID), pg.QuoteIdent(SchemaOf(t.ID)) + ", public"}
}

func (s *Server) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.tx(ctx, nil, fn)
}

func (s *Server) tx(ctx context.Context, opts *sql.TxOptions, fn func(tx *gorm.DB) error) error {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.ErrNoTenant
	}
	if err := s.auditTenant(ctx, t); err != nil {
		return s.notFoundIfGone(ctx, t, err)
	}
	err := s.app.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(routeSQL, s.routeArgs(t)...).Error; err != nil {
			return fmt.Errorf("take on the tenant: %w", err)
		}
		return fn(tx)
	}, opts)
	return s.notFoundIfGone(ctx, t, s.tenantError(t, err))
}

// notFoundIfGone turns err, a tenant's schema or role found missing
// (ErrTenantUnavailable), into ErrTenantNotFound when the tenant's account
// is gone too: the tenant was deleted while the server remembered its
// account (tenantcache.TTL), and its requests are 404 from the first one
// that finds it gone, not 503 until the cache forgets it. The server
// forgets the tenant then, as it does when the slug names another
// account by now.
func (s *Server) notFoundIfGone(ctx context.Context, t models.Account, err error) error {
	if !errors.Is(err, strategy.ErrTenantUnavailable) || ctx.Err() != nil {
		return err
	}
	now, lerr := s.lookUpTenant(ctx, t.Slug)
	switch {
	case errors.Is(lerr, strategy.ErrTenantNotFound):
		s.forget(t)
		return fmt.Errorf("%w: %q was deleted", strategy.ErrTenantNotFound, t.Slug)
	case lerr == nil && now.ID != t.ID:
		s.forget(t)
		return fmt.Errorf("%w: tenant %s: the address now names another account, try again", strategy.ErrUnavailable, t.Slug)
	}
	return err
}

// forget drops what the server remembers of tenant t.
func (s *Server) forget(t models.Account) {
	s.accounts.Forget(t.Slug)
	s.pages.Forget(t.Slug)
	s.audited.Forget(SchemaOf(t.ID))
}

// auditTenant checks the tenant's schema and role from the server's own
// session before it serves the tenant for the first time (see
// audit.MultiSchemaTenant). A finding makes that tenant unavailable (503),
// not the server.
func (s *Server) auditTenant(ctx context.Context, t models.Account) error {
	return s.audited.Check(SchemaOf(t.ID), func() error {
		if err := audit.MultiSchemaTenant(ctx, s.pools[0], SchemaOf(t.ID), RoleOf(s.opts, t.ID), s.opts); err != nil {
			s.opts.Log().Error("tenant schema refused", "tenant", t.Slug, "err", err)
			return s.tenantError(t, err)
		}
		// A tenant whose migration failed, or has not reached it yet, is
		// behind this code: served 503 until it is current, and checked
		// again on its next request (only a pass is remembered). Its
		// version table is read as the tenant's role, in its schema.
		err := s.app.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(routeSQL, s.routeArgs(t)...).Error; err != nil {
				return fmt.Errorf("take on the tenant: %w", err)
			}
			return pg.RequireCurrent(ctx, tx.Statement.ConnPool, pg.WithoutNewest(migrations.Tenant(), s.opts.HoldBackMigrations), SchemaOf(t.ID))
		}, &sql.TxOptions{ReadOnly: true})
		return s.tenantError(t, err)
	})
}

// tenantError says what went wrong for tenant t: a missing schema or role,
// an unsafe one, or a privilege error is that tenant's fault alone (503,
// the others are served).
func (s *Server) tenantError(t models.Account, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, strategy.ErrTenantUnavailable):
		return err
	case errors.Is(err, strategy.ErrUnsafeDeployment):
		return fmt.Errorf("%w: tenant %s: %w", strategy.ErrTenantUnavailable, t.Slug, err)
	case pg.IsPgError(err, "42P01"), pg.IsPgError(err, "3F000"):
		return fmt.Errorf("%w: tenant %s: its schema %s is missing or incomplete (run `tenancy migrate`; `tenancy check` says more): %w",
			strategy.ErrTenantUnavailable, t.Slug, SchemaOf(t.ID), err)
	case pg.IsPgError(err, "22023"), pg.IsPgError(err, "42704"):
		return fmt.Errorf("%w: tenant %s: its role %s is missing (run `tenancy migrate`): %w",
			strategy.ErrTenantUnavailable, t.Slug, RoleOf(s.opts, t.ID), err)
	case pg.IsPgError(err, "42501") && !pg.IsRLSViolation(err):
		return fmt.Errorf("%w: tenant %s: a privilege is missing (`tenancy check` lists it; `tenancy migrate` grants it): %w",
			strategy.ErrTenantUnavailable, t.Slug, err)
	}
	return fmt.Errorf("tenant %s: %w", t.Slug, pg.Classify(err))
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
	var acct models.Account
	err := s.reader.WithContext(ctx).Where("slug = ?", slug).Take(&acct).Error
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
	if err := s.reader.WithContext(ctx).Order("id").Find(&accts).Error; err != nil {
		return nil, fmt.Errorf("list tenants: %w", pg.Classify(err))
	}
	return accts, nil
}

func (s *Server) Ping(ctx context.Context) error { return pg.PingAll(ctx, s.opts.Database, s.pools) }

func (s *Server) Close() error { return pg.CloseAll(s.pools) }
