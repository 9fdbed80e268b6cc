package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"gorm.io/gorm"

	"tenancy/models"
)

// multiDB serves each tenant from its own database. One gorm root holds the
// callbacks and schema cache; each unit of work swaps in the tenant's pool,
// as gorm's own Connection does.
type multiDB struct {
	opts  Options
	base  *sql.DB // the PGDATABASE database: health checks only
	root  *gorm.DB
	pools *tenantPools
}

func openMultiDB(ctx context.Context, opts Options) (*multiDB, error) {
	base, err := openPool(opts.appDSN(opts.Database), 2, 1)
	if err != nil {
		return nil, err
	}
	if err := checkRuntimeRole(ctx, base); err != nil {
		base.Close()
		return nil, err
	}
	root, err := newMultiDBGorm(base, opts)
	if err != nil {
		base.Close()
		return nil, err
	}
	return &multiDB{
		opts: opts,
		base: base,
		root: root,
		pools: newTenantPools(opts.maxConns(), poolWait, func(database string) (*sql.DB, error) {
			return openPool(opts.appDSN(database), 4, 1)
		}),
	}, nil
}

// poolWait is how long a request waits for a tenant connection when the
// whole budget is busy.
const poolWait = 5 * time.Second

func newMultiDBGorm(pool gorm.ConnPool, opts Options) (*gorm.DB, error) {
	return newGorm(pool, opts.logger(), multiDBColumns{})
}

func (m *multiDB) Name() string { return MultiDB }

// database returns the tenant database of slug, or ErrTenantNotFound.
func (m *multiDB) database(slug string) (string, error) {
	i, ok := ParseSlug(slug)
	if !ok || i >= m.opts.TenantCount {
		return "", fmt.Errorf("%w: %q", ErrTenantNotFound, slug)
	}
	return m.opts.TenantDatabase(i), nil
}

// withTenantDB runs fn on a session bound to the tenant database's pool.
func (m *multiDB) withTenantDB(ctx context.Context, slug string, fn func(db *gorm.DB) error) error {
	database, err := m.database(slug)
	if err != nil {
		return err
	}
	pool, release, err := m.pools.acquire(ctx, database)
	if err != nil {
		return err
	}
	defer release()
	db := m.root.Session(&gorm.Session{NewDB: true, Context: ctx})
	db.Statement.ConnPool = pool
	if err := fn(db); err != nil {
		switch {
		case IsPgError(err, "3D000"):
			return fmt.Errorf("%w: tenant %s: database %q is missing (run `tenancy setup`): %w", ErrTenantUnavailable, slug, database, err)
		case tenantDatabaseUnreachable(err):
			return fmt.Errorf("%w: tenant %s: database %q refuses connections: %w", ErrTenantUnavailable, slug, database, err)
		}
		return fmt.Errorf("tenant %s: %w", slug, classify(err))
	}
	return nil
}

func (m *multiDB) TenantBySlug(ctx context.Context, slug string) (models.Account, error) {
	var acct models.Account
	err := m.withTenantDB(ctx, slug, func(db *gorm.DB) error {
		return db.Take(&acct).Error
	})
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return acct, fmt.Errorf("%w: %q has a database but no account yet (run `tenancy seed`)", ErrTenantNotFound, slug)
	case err != nil:
		return acct, err
	case acct.Slug != slug:
		return models.Account{}, fmt.Errorf("tenant %s: its database holds account %q", slug, acct.Slug)
	}
	return acct, nil
}

func (m *multiDB) Tenants(context.Context) ([]models.Account, error) {
	out := make([]models.Account, m.opts.TenantCount)
	for i := range out {
		out[i] = models.Account{Slug: Slug(i)}
	}
	return out, nil
}

func (m *multiDB) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return m.tx(ctx, nil, fn)
}

func (m *multiDB) tx(ctx context.Context, opts *sql.TxOptions, fn func(tx *gorm.DB) error) error {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return ErrNoTenant
	}
	return m.withTenantDB(ctx, t.Slug, func(db *gorm.DB) error {
		return db.Transaction(fn, opts)
	})
}

func (m *multiDB) ListSubtasks(ctx context.Context, page, perPage int) (SubtaskPage, error) {
	if models.IsAllTenants(ctx) {
		return SubtaskPage{}, fmt.Errorf("all-tenants subtask list: %w (each tenant has its own database)", ErrNotSupported)
	}
	var out SubtaskPage
	err := m.tx(ctx, snapshot(), func(tx *gorm.DB) error {
		var err error
		out, err = listSubtasks(tx, subtaskQuery{}, page, perPage)
		return err
	})
	return out, err
}

func (m *multiDB) Ping(ctx context.Context) error {
	if err := m.base.PingContext(ctx); err != nil {
		return classify(fmt.Errorf("ping %s: %w", m.opts.Database, err))
	}
	return nil
}

func (m *multiDB) Close() error {
	return errors.Join(m.pools.close(), m.base.Close())
}

// multiDBAdmin creates, migrates and fills tenant databases as the admin.
type multiDBAdmin struct {
	opts Options
}

func (a *multiDBAdmin) Name() string { return MultiDB }

// setupWorkers bounds how many tenant databases are created and migrated at
// once; PostgreSQL serialises much of CREATE DATABASE anyway.
const setupWorkers = 4

func (a *multiDBAdmin) Setup(ctx context.Context, progress io.Writer) (Report, error) {
	err := withMaintenance(ctx, a.opts, func(m *sql.DB) error {
		created, err := ensureRole(ctx, m, roleSpec{name: a.opts.AppUser, password: a.opts.AppPassword})
		if err != nil {
			return err
		}
		if created && progress != nil {
			fmt.Fprintf(progress, "role %s: created\n", a.opts.AppUser)
		}
		baseCreated, err := ensureDatabase(ctx, m, a.opts.Database)
		if err != nil {
			return err
		}
		if baseCreated && progress != nil {
			fmt.Fprintf(progress, "%s: created (holds no tenant data)\n", a.opts.Database)
		}
		_, err = m.ExecContext(ctx, fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", quoteIdent(a.opts.Database), quoteIdent(a.opts.AppUser)))
		return err
	})
	if err != nil {
		return Report{}, err
	}
	return a.eachTenant(ctx, progress, true)
}

func (a *multiDBAdmin) Migrate(ctx context.Context, progress io.Writer) (Report, error) {
	return a.eachTenant(ctx, progress, false)
}

// eachTenant migrates every tenant database (creating missing ones when
// create is set) and reports each by name, failures included.
func (a *multiDBAdmin) eachTenant(ctx context.Context, progress io.Writer, create bool) (Report, error) {
	reps := make([]DatabaseReport, a.opts.TenantCount)
	var printMu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(setupWorkers, a.opts.TenantCount) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				rep := &reps[i]
				rep.Database = a.opts.TenantDatabase(i)
				rep.Err = a.setupTenant(ctx, rep, create)
				printMu.Lock()
				printReport(progress, *rep)
				printMu.Unlock()
			}
		}()
	}
	for i := range reps {
		work <- i
	}
	close(work)
	wg.Wait()
	out := Report{Databases: reps}
	return out, out.Err()
}

func (a *multiDBAdmin) setupTenant(ctx context.Context, rep *DatabaseReport, create bool) error {
	if create {
		err := withMaintenance(ctx, a.opts, func(m *sql.DB) error {
			var err error
			rep.Created, err = ensureDatabase(ctx, m, rep.Database)
			return err
		})
		if err != nil {
			return err
		}
	}
	pool, err := openPool(a.opts.adminDSN(rep.Database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrate(ctx, pool, MultiDB, rep); err != nil {
		return classify(err)
	}
	return classify(grants(ctx, pool, rep.Database, a.opts.AppUser, ""))
}

// withTenantAdmin runs fn as the admin on the tenant database of slug.
func (a *multiDBAdmin) withTenantAdmin(ctx context.Context, slug string, fn func(db *gorm.DB) error) error {
	i, ok := ParseSlug(slug)
	if !ok || i >= a.opts.TenantCount {
		return fmt.Errorf("%w: %q (multidb has tenant-0 to tenant-%d; raise MULTIDB_COUNT and run setup for more)", ErrTenantNotFound, slug, a.opts.TenantCount-1)
	}
	database := a.opts.TenantDatabase(i)
	pool, err := openPool(a.opts.adminDSN(database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	root, err := newMultiDBGorm(pool, a.opts)
	if err != nil {
		return err
	}
	if err := fn(root.WithContext(ctx)); err != nil {
		if IsPgError(err, "3D000") {
			return fmt.Errorf("tenant %s: database %q is missing; run `tenancy setup` first", slug, database)
		}
		return fmt.Errorf("tenant %s: %w", slug, classify(err))
	}
	return nil
}

func (a *multiDBAdmin) ExistingSlugs(ctx context.Context, slugs []string) ([]string, error) {
	var found []string
	for _, slug := range slugs {
		var n int64
		err := a.withTenantAdmin(ctx, slug, func(db *gorm.DB) error {
			return db.Model(&models.Account{}).Count(&n).Error
		})
		if err != nil {
			return nil, err
		}
		if n > 0 {
			found = append(found, slug)
		}
	}
	return found, nil
}

func (a *multiDBAdmin) CreateTenant(ctx context.Context, acct models.Account, commit bool, fill func(tx *gorm.DB) error) error {
	return a.withTenantAdmin(ctx, acct.Slug, func(db *gorm.DB) error {
		return createTenantTx(ctx, db, commit, func(tx *gorm.DB, work context.Context) error {
			// The account's id comes from its database, so the tenant goes on
			// the context once the row exists.
			if err := tx.Create(&acct).Error; err != nil {
				return fmt.Errorf("create account: %w", err)
			}
			return fill(tx.WithContext(models.NewContextWithTenant(work, acct)))
		})
	})
}

func (a *multiDBAdmin) Close() error { return nil }
