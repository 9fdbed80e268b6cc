package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"tenancy/models"
)

// multiDB serves each tenant from its own database. One gorm root holds the
// callbacks and schema cache; each unit of work swaps in the tenant's pool,
// as gorm's own Connection does.
type multiDB struct {
	opts     Options
	base     *sql.DB // the PGDATABASE database: health checks only
	root     *gorm.DB
	pools    *tenantPools
	accounts *accountCache
	pages    pageStatements
	// audited remembers the tenant databases that passed auditTenant.
	audited auditMemo
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
	maxOpen := opts.TenantConns
	if maxOpen == 0 {
		var allowed int
		err := base.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int
			- current_setting('superuser_reserved_connections')::int`).Scan(&allowed)
		if err != nil {
			base.Close()
			return nil, fmt.Errorf("read max_connections to size the tenant pools (or set MULTIDB_OPEN_CONNS): %w", classify(err))
		}
		maxOpen = opts.tenantConnsFor(allowed)
	}
	root, err := newMultiDBGorm(base, opts)
	if err != nil {
		base.Close()
		return nil, err
	}
	return &multiDB{
		opts:     opts,
		base:     base,
		root:     root,
		accounts: newAccountCache(accountCacheTTL, maxCachedAccounts),
		pools: newTenantPools(opts.maxConns(), maxOpen, poolWait, func(database string) (*sql.DB, error) {
			return openPool(opts.appDSN(database), opts.maxConns(), opts.maxConns())
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
	err = m.audited.check(database, func() error { return m.auditTenant(ctx, pool, database) })
	if err == nil {
		db := m.root.Session(&gorm.Session{NewDB: true, Context: ctx})
		db.Statement.ConnPool = pool
		err = fn(db)
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrUnsafeDeployment):
			return fmt.Errorf("%w: tenant %s: %w", ErrTenantUnavailable, slug, err)
		case IsPgError(err, "42501") && !isRLSViolation(err):
			return fmt.Errorf("%w: tenant %s: the app role lacks a privilege in database %q (`tenancy check` lists it; `tenancy migrate` grants it): %w", ErrTenantUnavailable, slug, database, err)
		case IsPgError(err, "3D000"):
			return fmt.Errorf("%w: tenant %s: database %q is missing (run `tenancy setup`): %w", ErrTenantUnavailable, slug, database, err)
		case tenantDatabaseUnreachable(err):
			return fmt.Errorf("%w: tenant %s: database %q refuses connections: %w", ErrTenantUnavailable, slug, database, err)
		}
		return fmt.Errorf("tenant %s: %w", slug, classify(err))
	}
	return nil
}

// auditTenant is what the server checks of a tenant database before it
// serves the tenant for the first time (see auditTenantDatabase), from its
// own session: the grants it needs and no more, nothing owned, nothing
// created, no SECURITY DEFINER function within reach, no foreign schema.
// A finding makes that tenant unavailable (503), not the server.
func (m *multiDB) auditTenant(ctx context.Context, pool *sql.DB, database string) error {
	fs, err := auditTenantDatabase(ctx, pool, database, "", m.opts)
	if err != nil {
		return err
	}
	if err := unsafeDeployment(fs); err != nil {
		m.opts.logger().Error("tenant database refused", "database", database, "err", err)
		return err
	}
	return nil
}

func (m *multiDB) TenantBySlug(ctx context.Context, slug string) (models.Account, error) {
	return m.accounts.get(ctx, slug, m.lookUpTenant)
}

func (m *multiDB) lookUpTenant(ctx context.Context, slug string) (models.Account, error) {
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
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return SubtaskPage{}, ErrNoTenant
	}
	if err := checkPage(page, perPage); err != nil {
		return SubtaskPage{Page: page}, err
	}
	// No transaction: the page and its total are one statement, and the
	// database holds no other tenant to keep out.
	var out SubtaskPage
	err := m.withTenantDB(ctx, t.Slug, func(db *gorm.DB) error {
		query, args, err := m.pages.statement(ctx, m.root, subtaskQuery{}, t, page, perPage)
		if err != nil {
			return err
		}
		rows := make([]pagedRow, 0, perPage)
		err = withPgxConn(ctx, db.Statement.ConnPool.(*sql.DB), func(c *pgx.Conn) error {
			r, err := c.Query(ctx, query, args...)
			if err != nil {
				return err
			}
			defer r.Close()
			return errors.Join(scanPagedRows(r, &rows), r.Err())
		})
		if err != nil {
			return err
		}
		out, err = finishPage(db, page, perPage, rows)
		m.pages.noteTotal(t.Slug, out, err)
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
	start := time.Now()
	tmpl := DatabaseReport{Database: a.templateDatabase()}
	err := withMaintenance(ctx, a.opts, func(m *sql.DB) error {
		for _, r := range []roleSpec{
			{name: a.opts.AppUser, password: a.opts.AppPassword},
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
		baseCreated, err := ensureDatabase(ctx, m, a.opts.Database)
		if err != nil {
			return err
		}
		if baseCreated && progress != nil {
			fmt.Fprintf(progress, "%s: created (holds no tenant data)\n", a.opts.Database)
		}
		// The base database holds no tables; the server connects to it
		// for health checks, and nobody else needs to.
		for _, stmt := range []string{
			"REVOKE ALL ON DATABASE " + quoteIdent(a.opts.Database) + " FROM PUBLIC",
			"GRANT CONNECT ON DATABASE " + quoteIdent(a.opts.Database) + " TO " + quoteIdent(a.opts.AppUser),
		} {
			if _, err = m.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", stmt, err)
			}
		}
		t := time.Now()
		tmpl.Created, err = ensureDatabase(ctx, m, tmpl.Database)
		tmpl.CreateTime = time.Since(t)
		return err
	})
	if err != nil {
		return Report{}, err
	}
	// Tenant databases are copies of a migrated template: CREATE DATABASE
	// ... TEMPLATE copies files, which is faster than running the
	// migrations again in every database, and a copy starts at the
	// template's version. Each is still migrated (a no-op when it is up to
	// date) and granted afterwards, so an older tenant database catches up.
	t := time.Now()
	tmpl.Err = a.migrateDatabase(ctx, &tmpl)
	tmpl.MigrateTime = time.Since(t)
	printReport(progress, tmpl)
	if tmpl.Err != nil {
		out := Report{Databases: []DatabaseReport{tmpl}, Elapsed: time.Since(start)}
		return out, out.Err()
	}
	out, err := a.eachTenant(ctx, progress, true)
	out.Databases = append([]DatabaseReport{tmpl}, out.Databases...)
	out.Elapsed = time.Since(start)
	return out, err
}

// templateDatabase is the migrated, empty database that tenant databases
// are copied from. It holds no tenant and the application never connects to
// it; its name sorts with the tenant databases, so tools that clean up
// "<PGDATABASE>_tenant-*" find it too.
func (a *multiDBAdmin) templateDatabase() string {
	return a.opts.Database + "_tenant-template"
}

func (a *multiDBAdmin) Migrate(ctx context.Context, progress io.Writer) (Report, error) {
	start := time.Now()
	out, err := a.eachTenant(ctx, progress, false)
	out.Elapsed = time.Since(start)
	return out, err
}

// eachTenant migrates every tenant database (creating missing ones when
// create is set) and reports each by name, failures included.
func (a *multiDBAdmin) eachTenant(ctx context.Context, progress io.Writer, create bool) (Report, error) {
	reps := make([]DatabaseReport, a.opts.TenantCount)
	var printMu sync.Mutex
	forEachIndex(len(reps), setupWorkers, func(i int) {
		rep := &reps[i]
		rep.Database = a.opts.TenantDatabase(i)
		rep.Err = a.setupTenant(ctx, rep, create)
		printMu.Lock()
		printReport(progress, *rep)
		printMu.Unlock()
	})
	out := Report{Databases: reps}
	return out, out.Err()
}

func (a *multiDBAdmin) setupTenant(ctx context.Context, rep *DatabaseReport, create bool) error {
	if create {
		t := time.Now()
		err := withMaintenance(ctx, a.opts, func(m *sql.DB) error {
			var err error
			rep.Created, err = ensureDatabaseFrom(ctx, m, rep.Database, a.templateDatabase())
			return err
		})
		rep.CreateTime = time.Since(t)
		if err != nil {
			return err
		}
	}
	t := time.Now()
	defer func() { rep.MigrateTime = time.Since(t) }()
	return a.migrateDatabase(ctx, rep)
}

// migrateDatabase runs pending migrations and the grants on one database.
func (a *multiDBAdmin) migrateDatabase(ctx context.Context, rep *DatabaseReport) error {
	pool, err := openPool(a.opts.adminDSN(rep.Database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrate(ctx, pool, MultiDB, rep); err != nil {
		return classify(err)
	}
	return classify(grants(ctx, pool, grantSpec{database: rep.Database, app: a.opts.AppUser,
		counter: a.opts.CountsOwner(), counterReadsAccounts: true}))
}

// withTenantAdmin runs fn as the admin on the tenant database of slug.
func (a *multiDBAdmin) withTenantAdmin(ctx context.Context, slug string, fn func(db *gorm.DB) error) error {
	return a.withTenantPool(ctx, slug, func(pool *sql.DB) error {
		root, err := newMultiDBGorm(pool, a.opts)
		if err != nil {
			return err
		}
		return fn(root.WithContext(ctx))
	})
}

// tenantIndex is i for slug "tenant-i", when this deployment has a tenant
// database for it.
func (a *multiDBAdmin) tenantIndex(slug string) (int, error) {
	i, ok := ParseSlug(slug)
	if !ok || i >= a.opts.TenantCount {
		return 0, fmt.Errorf("%w: %q (multidb has tenant-0 to tenant-%d; raise MULTIDB_COUNT and run setup for more)", ErrTenantNotFound, slug, a.opts.TenantCount-1)
	}
	return i, nil
}

// withTenantPool runs fn on a one-connection admin pool on the tenant
// database of slug, and closes it after.
func (a *multiDBAdmin) withTenantPool(ctx context.Context, slug string, fn func(pool *sql.DB) error) error {
	i, err := a.tenantIndex(slug)
	if err != nil {
		return err
	}
	database := a.opts.TenantDatabase(i)
	pool, err := openPool(a.opts.adminDSN(database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := fn(pool); err != nil {
		if IsPgError(err, "3D000") {
			return fmt.Errorf("tenant %s: database %q is missing; run `tenancy setup` first", slug, database)
		}
		return fmt.Errorf("tenant %s: %w", slug, classify(err))
	}
	return nil
}

// ExistingSlugs asks every tenant database, several at a time: each answer
// needs a connection of its own.
func (a *multiDBAdmin) ExistingSlugs(ctx context.Context, slugs []string) ([]string, error) {
	found := make([]bool, len(slugs))
	errs := make([]error, len(slugs))
	forEachIndex(len(slugs), setupWorkers, func(i int) {
		var n int64
		errs[i] = a.withTenantAdmin(ctx, slugs[i], func(db *gorm.DB) error {
			return db.Model(&models.Account{}).Count(&n).Error
		})
		found[i] = n > 0
	})
	if err := firstErrors(errs); err != nil {
		return nil, err
	}
	var out []string
	for i, slug := range slugs {
		if found[i] {
			out = append(out, slug)
		}
	}
	return out, nil
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

// AssignIDs gives the account of tenant database i the id i+1, the id
// tenant-i has in a fresh singleschema deployment, and its rows ids from 1
// in each table. Nothing is asked of the database: it holds this one
// account, so while the account is missing its tables are empty and every
// id is free, and the ids are the same in every run, in any order, after
// an interrupted run or a reset too.
func (a *multiDBAdmin) AssignIDs(_ context.Context, d *TenantData) error {
	i, err := a.tenantIndex(d.Account.Slug)
	if err != nil {
		return err
	}
	if err := d.validate(); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, err)
	}
	fromOne := func(i int) int64 { return int64(i) + 1 }
	fillIDs(bulkLayout{fixedIDs: true}, d, int64(i)+1, fromOne, fromOne, fromOne, fromOne)
	return nil
}

func (a *multiDBAdmin) LoadTenant(ctx context.Context, d *TenantData, commit bool) error {
	if !d.hasIDs() {
		if err := a.AssignIDs(ctx, d); err != nil {
			return err
		}
	}
	return a.withTenantPool(ctx, d.Account.Slug, func(pool *sql.DB) error {
		return loadTenant(ctx, pool, bulkLayout{fixedIDs: true}, d, commit)
	})
}

// Flush needs no particular tenant database: the write-ahead log is the
// cluster's, so one synchronous commit anywhere flushes every database's.
func (a *multiDBAdmin) Flush(ctx context.Context) error {
	return withMaintenance(ctx, a.opts, func(m *sql.DB) error {
		return classify(flushWAL(ctx, m))
	})
}

// Reset empties every tenant database (they stay, migrated, ready to seed).
func (a *multiDBAdmin) Reset(ctx context.Context) (int, error) {
	counts := make([]int, a.opts.TenantCount)
	errs := make([]error, a.opts.TenantCount)
	forEachIndex(a.opts.TenantCount, setupWorkers, func(i int) {
		errs[i] = a.withTenantPool(ctx, Slug(i), func(pool *sql.DB) error {
			var err error
			counts[i], err = truncateTenantTables(ctx, pool)
			return err
		})
	})
	total, emptied := 0, 0
	for i, n := range counts {
		total += n
		if errs[i] == nil {
			emptied++
		}
	}
	if err := firstErrors(errs); err != nil {
		return total, fmt.Errorf("reset: %d of %d tenant databases were emptied (%d accounts removed) before these failed: %w; fix the cause and run it again",
			emptied, len(errs), total, err)
	}
	return total, nil
}

// CanBulkLoad is false: each multidb tenant database holds one account, so
// there is nothing to gain from one transaction over many.
func (a *multiDBAdmin) CanBulkLoad(context.Context) (bool, error) { return false, nil }

func (a *multiDBAdmin) BulkLoad(context.Context, <-chan *TenantData, bool, func(*TenantData)) error {
	return fmt.Errorf("bulk load: %w", ErrNotSupported)
}

func (a *multiDBAdmin) Close() error { return nil }
