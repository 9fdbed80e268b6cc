package strategy

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
)

// singleSchema serves every tenant from one database. Tenant work runs as
// the app role inside a transaction that first sets app.tenant_id
// transaction-locally; the all-tenants view runs as the read-only reader
// role, on its own pool.
type singleSchema struct {
	opts     Options
	app      *gorm.DB
	reader   *gorm.DB
	pools    []*sql.DB
	accounts *accountCache
	pages    pageStatements
	// appTurns and readerTurns order the page reads on each pool.
	appTurns, readerTurns turns
	// sessionLevelTenant makes tx set app.tenant_id for the rest of the
	// connection's session instead of the transaction. It is wrong, and
	// nothing in the package sets it: only tests do (export_load_test.go),
	// to show what transaction-local settings prevent.
	sessionLevelTenant bool
}

func openSingleSchema(ctx context.Context, opts Options) (*singleSchema, error) {
	s, err := newSingleSchema(opts)
	if err != nil {
		return nil, err
	}
	if err := s.checkRoles(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newSingleSchema opens the pools; nothing connects until they are used.
func newSingleSchema(opts Options) (*singleSchema, error) {
	s := &singleSchema{opts: opts, accounts: newAccountCache(accountCacheTTL, maxCachedAccounts)}
	budget := opts.maxConns()
	s.appTurns, s.readerTurns = newTurns(budget), newTurns(budget)
	appPool, err := openPool(opts.appDSN(opts.Database), budget, budget)
	if err != nil {
		return nil, err
	}
	s.pools = append(s.pools, appPool)
	readerPool, err := openPool(opts.readerDSN(opts.Database), budget, budget)
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
func (s *singleSchema) checkRoles(ctx context.Context) error {
	if err := checkRuntimeRole(ctx, s.pools[0]); err != nil {
		return err
	}
	if err := checkReaderRole(ctx, s.pools[1], s.opts); err != nil {
		return err
	}
	return checkPolicies(ctx, s.pools[0], s.opts)
}

// newScopedGorm is a gorm root on which the tenant scope is mandatory.
func newScopedGorm(pool gorm.ConnPool, opts Options) (*gorm.DB, error) {
	return newGorm(pool, opts.logger(), tenantScope{})
}

func (s *singleSchema) Name() string { return SingleSchema }

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

func (s *singleSchema) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.tx(ctx, nil, fn)
}

func (s *singleSchema) tx(ctx context.Context, opts *sql.TxOptions, fn func(tx *gorm.DB) error) error {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return ErrNoTenant
	}
	err := s.app.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := setTenant(tx, int64(t.ID), !s.sessionLevelTenant); err != nil {
			return err
		}
		return fn(tx)
	}, opts)
	if err != nil {
		return fmt.Errorf("tenant %s: %w", t.Slug, classify(err))
	}
	return nil
}

// slugSyntax keeps obviously invalid slugs away from the database.
var slugSyntax = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func (s *singleSchema) TenantBySlug(ctx context.Context, slug string) (models.Account, error) {
	if len(slug) > 63 || !slugSyntax.MatchString(slug) {
		return models.Account{}, fmt.Errorf("%w: %q", ErrTenantNotFound, slug)
	}
	return s.accounts.get(ctx, slug, s.lookUpTenant)
}

func (s *singleSchema) lookUpTenant(ctx context.Context, slug string) (models.Account, error) {
	// One statement, no explicit transaction: the reader's transactions are
	// read-only by default, and this runs on every request.
	var acct models.Account
	err := s.reader.WithContext(models.NewContextForAllTenants(ctx)).Where("slug = ?", slug).Take(&acct).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return models.Account{}, fmt.Errorf("%w: %q", ErrTenantNotFound, slug)
	case err != nil:
		return models.Account{}, fmt.Errorf("look up tenant %q: %w", slug, classify(err))
	}
	return acct, nil
}

func (s *singleSchema) Tenants(ctx context.Context) ([]models.Account, error) {
	var accts []models.Account
	err := s.reader.WithContext(models.NewContextForAllTenants(ctx)).Order("id").Find(&accts).Error
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", classify(err))
	}
	return accts, nil
}

func (s *singleSchema) ListSubtasks(ctx context.Context, page, perPage int) (SubtaskPage, error) {
	var out SubtaskPage
	var err error
	if models.IsAllTenants(ctx) {
		// No transaction: the page and its total are one statement.
		err = s.readerTurns.do(ctx, func() error {
			out, err = listAllTenants(s.reader.WithContext(models.NewContextForAllTenants(ctx)), page, perPage)
			return err
		})
		if err != nil && !errors.Is(err, ErrPageNotFound) {
			err = fmt.Errorf("all tenants: %w", classify(err))
		}
		return out, err
	}
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return SubtaskPage{}, ErrNoTenant
	}
	if err := checkPage(page, perPage); err != nil {
		return SubtaskPage{Page: page}, err
	}
	query, args, err := s.pages.statement(ctx, s.app, subtaskQuery{denormalised: true}, t, page, perPage)
	if err != nil {
		return SubtaskPage{}, fmt.Errorf("tenant %s: %w", t.Slug, err)
	}
	rows := make([]pagedRow, 0, perPage)
	err = s.readInOneTrip(ctx, t, query, args, func(r pgx.Rows) error { return scanPagedRows(r, &rows) })
	for _, r := range rows {
		if r.AccountSlug != t.Slug {
			// The account this slug was resolved to is not the one whose
			// rows these are: the slug moved to another account (or a row
			// of another tenant got through). Serve nothing; the next
			// request resolves the slug afresh.
			s.accounts.forget(t.Slug)
			return SubtaskPage{}, fmt.Errorf("%w: tenant %s: the rows read belong to account %q; the address now names another account, try again",
				ErrUnavailable, t.Slug, r.AccountSlug)
		}
	}
	if err != nil {
		return SubtaskPage{}, err
	}
	if len(rows) > 0 {
		out = newPage(page, perPage, rows[0].Total, rows)
	} else {
		err = s.tx(ctx, snapshot(), func(tx *gorm.DB) error {
			out, err = finishPage(tx, page, perPage, nil)
			return err
		})
	}
	s.pages.noteTotal(t.Slug, out, err)
	return out, err
}

func (s *singleSchema) Ping(ctx context.Context) error {
	for _, p := range s.pools {
		if err := p.PingContext(ctx); err != nil {
			return classify(fmt.Errorf("ping %s: %w", s.opts.Database, err))
		}
	}
	return nil
}

func (s *singleSchema) Close() error {
	var errs []error
	for _, p := range s.pools {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// singleSchemaAdmin sets up and fills the shared database as the admin role.
type singleSchemaAdmin struct {
	opts Options

	mu   sync.Mutex
	pool *sql.DB
	db   *gorm.DB
}

func (a *singleSchemaAdmin) Name() string { return SingleSchema }

// conn opens the admin pool on the (by now existing) database.
func (a *singleSchemaAdmin) conn() (*sql.DB, *gorm.DB, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pool != nil {
		return a.pool, a.db, nil
	}
	pool, err := openPool(a.opts.adminDSN(a.opts.Database), adminConns, adminConns)
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

func (a *singleSchemaAdmin) Setup(ctx context.Context, progress io.Writer) (Report, error) {
	start := time.Now()
	rep := DatabaseReport{Database: a.opts.Database}
	err := withMaintenance(ctx, a.opts, func(m *sql.DB) error {
		if err := checkAdminRole(ctx, m); err != nil {
			return err
		}
		for _, r := range []roleSpec{
			{name: a.opts.AppUser, password: a.opts.AppPassword},
			{name: a.opts.ReaderUser, password: a.opts.ReaderPassword, bypassRLS: true},
			{name: a.opts.CountsOwner(), noLogin: true},
		} {
			created, err := ensureRole(ctx, m, r)
			if err != nil {
				return err
			}
			if created && progress != nil {
				fmt.Fprintf(progress, "role %s: created\n", r.name)
			}
		}
		var err error
		t := time.Now()
		rep.Created, err = ensureDatabase(ctx, m, a.opts.Database)
		rep.CreateTime = time.Since(t)
		return err
	})
	if err != nil {
		return Report{}, err
	}
	t := time.Now()
	rep.Err = a.migrate(ctx, &rep)
	rep.MigrateTime = time.Since(t)
	printReport(progress, rep)
	out := Report{Databases: []DatabaseReport{rep}, Elapsed: time.Since(start)}
	return out, out.Err()
}

func (a *singleSchemaAdmin) Migrate(ctx context.Context, progress io.Writer) (Report, error) {
	rep := DatabaseReport{Database: a.opts.Database}
	rep.Err = a.migrate(ctx, &rep)
	printReport(progress, rep)
	out := Report{Databases: []DatabaseReport{rep}}
	return out, out.Err()
}

func (a *singleSchemaAdmin) migrate(ctx context.Context, rep *DatabaseReport) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	if err := migrate(ctx, pool, SingleSchema, rep); err != nil {
		return classify(err)
	}
	return classify(grants(ctx, pool, grantSpec{database: a.opts.Database, app: a.opts.AppUser, reader: a.opts.ReaderUser,
		counter: a.opts.CountsOwner(), rls: true}))
}

func (a *singleSchemaAdmin) ExistingSlugs(ctx context.Context, slugs []string) ([]string, error) {
	pool, db, err := a.conn()
	if err != nil {
		return nil, err
	}
	if err := checkAdminRole(ctx, pool); err != nil {
		return nil, err
	}
	var found []string
	err = db.WithContext(models.NewContextForAllTenants(ctx)).Model(&models.Account{}).Where("slug IN ?", slugs).Order("id").Pluck("slug", &found).Error
	if err != nil {
		return nil, fmt.Errorf("look up existing accounts: %w", classify(err))
	}
	return found, nil
}

func (a *singleSchemaAdmin) CreateTenant(ctx context.Context, acct models.Account, commit bool, fill func(tx *gorm.DB) error) error {
	_, db, err := a.conn()
	if err != nil {
		return err
	}
	err = createTenantTx(ctx, db, commit, func(tx *gorm.DB, work context.Context) error {
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
		return fmt.Errorf("tenant %s: %w", acct.Slug, classify(err))
	}
	return nil
}

// adminConns is enough connections for the seeder's workers.
const adminConns = 8

// AssignIDs draws d's ids from the shared sequences, after every id handed
// out before: the same ids in every run only if the calls come in the same
// order, with nothing else drawing meanwhile.
func (a *singleSchemaAdmin) AssignIDs(ctx context.Context, d *TenantData) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	if err := d.validate(); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, err)
	}
	if err := drawTenantIDs(ctx, pool, bulkLayout{denormalised: true}, d); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, classify(err))
	}
	return nil
}

func (a *singleSchemaAdmin) LoadTenant(ctx context.Context, d *TenantData, commit bool) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	if !d.hasIDs() {
		if err := a.AssignIDs(ctx, d); err != nil {
			return err
		}
	}
	if err := loadTenant(ctx, pool, bulkLayout{denormalised: true}, d, commit); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, classify(err))
	}
	return nil
}

func (a *singleSchemaAdmin) Flush(ctx context.Context) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	return classify(flushWAL(ctx, pool))
}

func (a *singleSchemaAdmin) Reset(ctx context.Context) (int, error) {
	pool, _, err := a.conn()
	if err != nil {
		return 0, err
	}
	if err := checkAdminRole(ctx, pool); err != nil {
		return 0, err
	}
	n, err := truncateTenantTables(ctx, pool)
	if err != nil {
		return 0, fmt.Errorf("reset %s: %w", a.opts.Database, classify(err))
	}
	return n, nil
}

func (a *singleSchemaAdmin) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pool == nil {
		return nil
	}
	err := a.pool.Close()
	a.pool, a.db = nil, nil
	return err
}

// withMaintenance runs fn on a short-lived admin connection to the
// maintenance database, where roles and databases are created.
func withMaintenance(ctx context.Context, opts Options, fn func(*sql.DB) error) error {
	m, err := openPool(opts.adminDSN(maintenanceDatabase), 1, 1)
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := m.PingContext(ctx); err != nil {
		err = classify(fmt.Errorf("connect to PostgreSQL at %s:%d as %q: %w", opts.Host, opts.Port, opts.AdminUser, err))
		if errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w (is the server running? `make db` starts it)", err)
		}
		return err
	}
	return fn(m)
}
