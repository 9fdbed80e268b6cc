package singleschema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
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
	accounts *tenantcache.Cache
	pages    pages.Statements
	// appTurns and readerTurns order the page reads on each pool.
	appTurns, readerTurns pg.Turns
	// sessionLevelTenant makes tx set app.tenant_id for the rest of the
	// connection's session instead of the transaction. It is wrong, and
	// nothing in the package sets it: only tests do (export_load_test.go),
	// to show what transaction-local settings prevent.
	sessionLevelTenant bool
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
	return s, nil
}

// newServer opens the pools; nothing connects until they are used.
func newServer(opts strategy.Options) (*Server, error) {
	s := &Server{opts: opts, accounts: tenantcache.New(tenantcache.TTL, tenantcache.MaxEntries)}
	budget := opts.Budget()
	s.appTurns, s.readerTurns = pg.NewTurns(budget), pg.NewTurns(budget)
	appPool, err := pg.OpenPool(opts.AppDSN(opts.Database), budget, budget)
	if err != nil {
		return nil, err
	}
	s.pools = append(s.pools, appPool)
	readerPool, err := pg.OpenPool(opts.ReaderDSN(opts.Database), budget, budget)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.pools = append(s.pools, readerPool)
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
func setTenant(tx *gorm.DB, id int64, local bool) error {
	if err := tx.Exec(setTenantSQL(local), strconv.FormatInt(id, 10)).Error; err != nil {
		return fmt.Errorf("set tenant: %w", err)
	}
	return nil
}

func setTenantSQL(local bool) string {
	if !local {
		return "SELECT set_config('app.tenant_id', $1, false)"
	}
	return "SELECT set_config('app.tenant_id', $1, true)"
}

func (s *Server) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.tx(ctx, nil, fn)
}

func (s *Server) tx(ctx context.Context, opts *sql.TxOptions, fn func(tx *gorm.DB) error) error {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.ErrNoTenant
	}
	err := s.app.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := setTenant(tx, int64(t.ID), !s.sessionLevelTenant); err != nil {
			return err
		}
		return fn(tx)
	}, opts)
	if err != nil {
		return fmt.Errorf("tenant %s: %w", t.Slug, pg.Classify(err))
	}
	return nil
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

func (s *Server) ListSubtasks(ctx context.Context, page, perPage int) (strategy.SubtaskPage, error) {
	var out strategy.SubtaskPage
	var err error
	if models.IsAllTenants(ctx) {
		// No transaction: the page and its total are one statement.
		err = s.readerTurns.Do(ctx, func() error {
			out, err = listAllTenants(s.reader.WithContext(models.NewContextForAllTenants(ctx)), page, perPage)
			return err
		})
		if err != nil && !errors.Is(err, strategy.ErrPageNotFound) {
			err = fmt.Errorf("all tenants: %w", pg.Classify(err))
		}
		return out, err
	}
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.SubtaskPage{}, strategy.ErrNoTenant
	}
	if err := pages.Check(page, perPage); err != nil {
		return strategy.SubtaskPage{Page: page}, err
	}
	query, args, err := s.pages.Statement(ctx, s.app, pages.Query{Denormalised: true}, t, page, perPage)
	if err != nil {
		return strategy.SubtaskPage{}, fmt.Errorf("tenant %s: %w", t.Slug, err)
	}
	rows := make([]pages.Row, 0, perPage)
	err = s.readInOneTrip(ctx, t, query, args, func(r pgx.Rows) error { return pages.Scan(r, &rows) })
	for _, r := range rows {
		if r.AccountSlug != t.Slug {
			// The account this slug was resolved to is not the one whose
			// rows these are: the slug moved to another account (or a row
			// of another tenant got through). Serve nothing; the next
			// request resolves the slug afresh.
			s.accounts.Forget(t.Slug)
			return strategy.SubtaskPage{}, fmt.Errorf("%w: tenant %s: the rows read belong to account %q; the address now names another account, try again",
				strategy.ErrUnavailable, t.Slug, r.AccountSlug)
		}
	}
	if err != nil {
		return strategy.SubtaskPage{}, err
	}
	if len(rows) > 0 {
		out = pages.New(page, perPage, rows[0].Total, rows)
	} else {
		err = s.tx(ctx, pages.Snapshot(), func(tx *gorm.DB) error {
			out, err = pages.Finish(tx, page, perPage, nil)
			return err
		})
	}
	s.pages.NoteTotal(t.Slug, out, err)
	return out, err
}

func (s *Server) Ping(ctx context.Context) error {
	for _, p := range s.pools {
		if err := p.PingContext(ctx); err != nil {
			return pg.Classify(fmt.Errorf("ping %s: %w", s.opts.Database, err))
		}
	}
	return nil
}

func (s *Server) Close() error {
	var errs []error
	for _, p := range s.pools {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// NewAdmin returns the setup/migrate/seed side of singleschema, as the
// admin role. It connects only when first used.
func NewAdmin(opts strategy.Options) (*Admin, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	return &Admin{opts: opts}, nil
}

// Admin sets up and fills the shared database as the admin role.
type Admin struct {
	opts strategy.Options

	mu   sync.Mutex
	pool *sql.DB
	db   *gorm.DB
}

func (a *Admin) Name() string { return strategy.SingleSchema }

// conn opens the admin pool on the (by now existing) database.
func (a *Admin) conn() (*sql.DB, *gorm.DB, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pool != nil {
		return a.pool, a.db, nil
	}
	pool, err := pg.OpenPool(a.opts.AdminDSN(a.opts.Database), adminConns, adminConns)
	if err != nil {
		return nil, nil, err
	}
	db, err := newScopedGorm(pool, a.opts)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	a.pool, a.db = pool, db
	return pool, db, nil
}

func (a *Admin) Setup(ctx context.Context, progress io.Writer) (strategy.Report, error) {
	start := time.Now()
	rep := strategy.DatabaseReport{Database: a.opts.Database}
	err := pg.WithMaintenance(ctx, a.opts, func(m *sql.DB) error {
		if err := audit.AdminRole(ctx, m); err != nil {
			return err
		}
		for _, r := range []pg.RoleSpec{
			{Name: a.opts.AppUser, Password: a.opts.AppPassword},
			{Name: a.opts.ReaderUser, Password: a.opts.ReaderPassword, BypassRLS: true},
			{Name: a.opts.CountsOwner(), NoLogin: true},
		} {
			created, err := pg.EnsureRole(ctx, m, r)
			if err != nil {
				return err
			}
			if created && progress != nil {
				fmt.Fprintf(progress, "role %s: created\n", r.Name)
			}
		}
		var err error
		t := time.Now()
		rep.Created, err = pg.EnsureDatabase(ctx, m, a.opts.Database)
		rep.CreateTime = time.Since(t)
		return err
	})
	if err != nil {
		return strategy.Report{}, err
	}
	t := time.Now()
	rep.Err = a.migrate(ctx, &rep)
	rep.MigrateTime = time.Since(t)
	pg.PrintReport(progress, rep)
	out := strategy.Report{Databases: []strategy.DatabaseReport{rep}, Elapsed: time.Since(start)}
	return out, out.Err()
}

func (a *Admin) Migrate(ctx context.Context, progress io.Writer) (strategy.Report, error) {
	rep := strategy.DatabaseReport{Database: a.opts.Database}
	rep.Err = a.migrate(ctx, &rep)
	pg.PrintReport(progress, rep)
	out := strategy.Report{Databases: []strategy.DatabaseReport{rep}}
	return out, out.Err()
}

func (a *Admin) migrate(ctx context.Context, rep *strategy.DatabaseReport) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	if err := pg.Migrate(ctx, pool, migrations.FS(), rep); err != nil {
		return pg.Classify(err)
	}
	return pg.Classify(pg.Grants(ctx, pool, pg.GrantSpec{Database: a.opts.Database, App: a.opts.AppUser, Reader: a.opts.ReaderUser,
		Counter: a.opts.CountsOwner(), RLS: true}))
}

func (a *Admin) ExistingSlugs(ctx context.Context, slugs []string) ([]string, error) {
	pool, db, err := a.conn()
	if err != nil {
		return nil, err
	}
	if err := audit.AdminRole(ctx, pool); err != nil {
		return nil, err
	}
	var found []string
	err = db.WithContext(models.NewContextForAllTenants(ctx)).Model(&models.Account{}).Where("slug IN ?", slugs).Order("id").Pluck("slug", &found).Error
	if err != nil {
		return nil, fmt.Errorf("look up existing accounts: %w", pg.Classify(err))
	}
	return found, nil
}

func (a *Admin) CreateTenant(ctx context.Context, acct models.Account, commit bool, fill func(tx *gorm.DB) error) error {
	_, db, err := a.conn()
	if err != nil {
		return err
	}
	err = pg.CreateTenantTx(ctx, db, commit, func(tx *gorm.DB, work context.Context) error {
		// Take the id first: the account's own row is a tenanted row too, so
		// it is written, like the rest, with its tenant on the context and in
		// app.tenant_id.
		if err := tx.Raw("SELECT nextval(pg_get_serial_sequence('accounts', 'id'))").Scan(&acct.ID).Error; err != nil {
			return fmt.Errorf("allocate account id: %w", err)
		}
		if err := setTenant(tx, int64(acct.ID), true); err != nil {
			return err
		}
		// The id is the database's (GENERATED ALWAYS); only the admin may
		// write one it drew itself.
		if err := tx.Exec("INSERT INTO public.accounts (id, slug, name) OVERRIDING SYSTEM VALUE VALUES (?, ?, ?)", int64(acct.ID), acct.Slug, acct.Name).Error; err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		return fill(tx.WithContext(models.NewContextWithTenant(work, acct)))
	})
	if err != nil {
		return fmt.Errorf("tenant %s: %w", acct.Slug, pg.Classify(err))
	}
	return nil
}

// adminConns is enough connections for the seeder's workers.
const adminConns = 8

// AssignIDs draws d's ids from the shared sequences, after every id handed
// out before: the same ids in every run only if the calls come in the same
// order, with nothing else drawing meanwhile.
func (a *Admin) AssignIDs(ctx context.Context, d *strategy.TenantData) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, err)
	}
	if err := pg.DrawTenantIDs(ctx, pool, pg.Layout{Denormalised: true}, d); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, pg.Classify(err))
	}
	return nil
}

func (a *Admin) LoadTenant(ctx context.Context, d *strategy.TenantData, commit bool) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	if !d.HasIDs() {
		if err := a.AssignIDs(ctx, d); err != nil {
			return err
		}
	}
	if err := pg.LoadTenant(ctx, pool, pg.Layout{Denormalised: true}, d, commit); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, pg.Classify(err))
	}
	return nil
}

func (a *Admin) Flush(ctx context.Context) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	return pg.Classify(pg.FlushWAL(ctx, pool))
}

func (a *Admin) Reset(ctx context.Context) (int, error) {
	pool, _, err := a.conn()
	if err != nil {
		return 0, err
	}
	if err := audit.AdminRole(ctx, pool); err != nil {
		return 0, err
	}
	n, err := pg.TruncateTenantTables(ctx, pool)
	if err != nil {
		return 0, fmt.Errorf("reset %s: %w", a.opts.Database, pg.Classify(err))
	}
	return n, nil
}

func (a *Admin) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pool == nil {
		return nil
	}
	err := a.pool.Close()
	a.pool, a.db = nil, nil
	return err
}

// Destroy drops the database and the app and reader roles.
func (a *Admin) Destroy(ctx context.Context) error {
	if err := a.Close(); err != nil {
		return err
	}
	return pg.Destroy(ctx, a.opts, []string{a.opts.Database}, []string{a.opts.AppUser, a.opts.ReaderUser, a.opts.CountsOwner()})
}
