package multidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/fleet"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multidb/migrations"
	"time"

	"github.com/pressly/goose/v3"
	"gorm.io/gorm"
)

// NewAdmin returns the setup/migrate/seed side of multidb, as the admin
// role. It connects only when first used.
func NewAdmin(opts strategy.Options) (*Admin, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	return &Admin{opts: opts}, nil
}

// validate checks opts for multidb.
func validate(opts strategy.Options) error {
	err := opts.Validate()
	if opts.TenantCount < 1 {
		err = errors.Join(err, fmt.Errorf("tenant count %d: want at least 1", opts.TenantCount))
	}
	if err != nil {
		return fmt.Errorf("invalid options: %w", err)
	}
	return nil
}

// Admin creates, migrates and fills tenant databases as the admin.
type Admin struct {
	opts strategy.Options
}

func (a *Admin) Name() string { return strategy.MultiDB }

// setupWorkers bounds how many tenant databases are created and migrated at
// once; PostgreSQL serialises much of CREATE DATABASE anyway.
const setupWorkers = 4

func (a *Admin) Setup(ctx context.Context, progress io.Writer) (strategy.Report, error) {
	start := time.Now()
	tmpl := strategy.DatabaseReport{Database: a.templateDatabase()}
	err := pg.WithMaintenance(ctx, a.opts, func(m *sql.DB) error {
		for _, r := range []pg.RoleSpec{
			{Name: a.opts.AppUser, Password: a.opts.AppPassword},
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
		baseCreated, err := pg.EnsureDatabase(ctx, m, a.opts.Database)
		if err != nil {
			return err
		}
		if baseCreated && progress != nil {
			fmt.Fprintf(progress, "%s: created (holds no tenant data)\n", a.opts.Database)
		}
		// The base database holds no tables; the server connects to it
		// for health checks, and nobody else needs to.
		for _, stmt := range []string{
			"REVOKE ALL ON DATABASE " + pg.QuoteIdent(a.opts.Database) + " FROM PUBLIC",
			"GRANT CONNECT ON DATABASE " + pg.QuoteIdent(a.opts.Database) + " TO " + pg.QuoteIdent(a.opts.AppUser),
		} {
			if _, err = m.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", stmt, err)
			}
		}
		t := time.Now()
		tmpl.Created, err = pg.EnsureDatabase(ctx, m, tmpl.Database)
		tmpl.CreateTime = time.Since(t)
		return err
	})
	if err != nil {
		return strategy.Report{}, err
	}
	// Tenant databases are copies of a migrated template: CREATE DATABASE
	// ... TEMPLATE copies files, which is faster than running the
	// migrations again in every database, and a copy starts at the
	// template's version. Each is still migrated (a no-op when it is up to
	// date) and granted afterwards, so an older tenant database catches up.
	t := time.Now()
	tmpl.Err = a.migrateDatabase(ctx, &tmpl, "")
	tmpl.MigrateTime = time.Since(t)
	pg.PrintReport(progress, tmpl)
	if tmpl.Err != nil {
		out := strategy.Report{Databases: []strategy.DatabaseReport{tmpl}, Elapsed: time.Since(start)}
		return out, out.Err()
	}
	// Setup attempts every tenant, whatever fails: it is run to build
	// the deployment, and each tenant is reported.
	out, err := a.eachTenant(ctx, progress, true, a.privilegesOf(ctx, tmpl.Database), strategy.MigrateOptions{Continue: true})
	out.Databases = append([]strategy.DatabaseReport{tmpl}, out.Databases...)
	out.Elapsed = time.Since(start)
	return out, err
}

// templateDatabase is the migrated, empty database that tenant databases
// are copied from. It holds no tenant and the application never connects to
// it; its name sorts with the tenant databases, so tools that clean up
// "<PGDATABASE>_tenant-*" find it too.
func (a *Admin) templateDatabase() string {
	return a.opts.Database + "_tenant-template"
}

// Migrate brings the template database up to date first, so tenant
// databases created from it later start current, then every tenant
// database; see migrateDatabase for what a tenant already current costs.
func (a *Admin) Migrate(ctx context.Context, progress io.Writer, o strategy.MigrateOptions) (strategy.Report, error) {
	start := time.Now()
	tmpl := strategy.DatabaseReport{Database: a.templateDatabase()}
	tmpl.Err = a.migrateDatabase(ctx, &tmpl, "")
	tmpl.MigrateTime = time.Since(start)
	var granted string
	switch {
	case tmpl.Err == nil:
		pg.PrintReport(progress, tmpl)
		granted = a.privilegesOf(ctx, tmpl.Database)
	case errors.Is(tmpl.Err, errDatabaseMissing):
		// A deployment set up before tenant databases were copied from a
		// template has none; its tenants are still migrated, and granted.
		tmpl = strategy.DatabaseReport{}
	default:
		pg.PrintReport(progress, tmpl)
		out := strategy.Report{Databases: []strategy.DatabaseReport{tmpl}, Elapsed: time.Since(start)}
		return out, out.Err()
	}
	out, err := a.eachTenant(ctx, progress, false, granted, o)
	if tmpl.Database != "" {
		out.Databases = append([]strategy.DatabaseReport{tmpl}, out.Databases...)
	}
	out.Elapsed = time.Since(start)
	return out, err
}

// privilegesOf is the privileges fingerprint of a database just granted,
// or "" when it cannot be read (every tenant is then granted again).
func (a *Admin) privilegesOf(ctx context.Context, database string) string {
	pool, err := pg.OpenPool(a.opts.AdminDSN(database), 1, 1)
	if err != nil {
		return ""
	}
	defer pool.Close()
	digest, err := pg.PrivilegesFingerprint(ctx, pool)
	if err != nil {
		return ""
	}
	return digest
}

// eachTenant migrates every tenant database (creating missing ones when
// create is set) as o says, and reports each by name, failures and those
// not attempted included.
func (a *Admin) eachTenant(ctx context.Context, progress io.Writer, create bool, granted string, o strategy.MigrateOptions) (strategy.Report, error) {
	reps := make([]strategy.DatabaseReport, a.opts.TenantCount)
	for i := range reps {
		reps[i].Tenant, reps[i].Database = strategy.Slug(i), a.opts.TenantDatabase(i)
	}
	fleet.Run(ctx, reps, o, setupWorkers, func(ctx context.Context, _ int, rep *strategy.DatabaseReport) {
		rep.Err = a.setupTenant(ctx, rep, create, granted)
	}, func(rep strategy.DatabaseReport) { pg.PrintReport(progress, rep) })
	out := strategy.Report{Databases: reps}
	return out, out.Err()
}

func (a *Admin) setupTenant(ctx context.Context, rep *strategy.DatabaseReport, create bool, granted string) error {
	if create {
		t := time.Now()
		err := pg.WithMaintenance(ctx, a.opts, func(m *sql.DB) error {
			var err error
			rep.Created, err = pg.EnsureDatabaseFrom(ctx, m, rep.Database, a.templateDatabase())
			return err
		})
		rep.CreateTime = time.Since(t)
		if err != nil {
			return err
		}
	}
	t := time.Now()
	defer func() { rep.MigrateTime = time.Since(t) }()
	return a.migrateDatabase(ctx, rep, granted)
}

// errDatabaseMissing: a database the deployment should have is not there.
var errDatabaseMissing = errors.New("database missing")

// migrateDatabase runs pending migrations and the grants on one database.
// A database at every version is only read (goose would make several
// round trips to find nothing to do), and when granted is the
// fingerprint of a database granted just now (the template) and this
// one's is equal, its privileges are already exactly what Grants makes
// and the grants transaction is skipped; any difference, drift by hand
// included, is granted again.
func (a *Admin) migrateDatabase(ctx context.Context, rep *strategy.DatabaseReport, granted string) error {
	pool, err := pg.OpenPool(a.opts.AdminDSN(rep.Database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	files := pg.WithoutNewest(migrations.FS(), a.opts.HoldBackMigrations)
	current, err := pg.AtEveryVersion(ctx, pool, files, "public", goose.DefaultTablename)
	switch {
	case pg.IsPgError(err, "3D000"):
		return fmt.Errorf("%w: database %q does not exist; run `tenancy setup` to create it", errDatabaseMissing, rep.Database)
	case err != nil:
		return err
	case current >= 0:
		rep.From, rep.To = current, current
	default:
		if err := pg.Migrate(ctx, pool, files, "", rep); err != nil {
			return pg.Classify(err)
		}
	}
	if granted != "" && len(rep.Applied) == 0 {
		if now, err := pg.PrivilegesFingerprint(ctx, pool); err == nil && now == granted {
			return nil
		}
	}
	return pg.Classify(pg.Grants(ctx, pool, pg.GrantSpec{Database: rep.Database, App: a.opts.AppUser,
		Counter: a.opts.CountsOwner(), CounterReadsAccounts: true}))
}

// withTenantAdmin runs fn as the admin on the tenant database of slug.
func (a *Admin) withTenantAdmin(ctx context.Context, slug string, fn func(db *gorm.DB) error) error {
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
func (a *Admin) tenantIndex(slug string) (int, error) {
	i, ok := strategy.ParseSlug(slug)
	if !ok || i >= a.opts.TenantCount {
		return 0, fmt.Errorf("%w: %q (multidb has tenant-0 to tenant-%d; raise MULTIDB_COUNT and run setup for more)", strategy.ErrTenantNotFound, slug, a.opts.TenantCount-1)
	}
	return i, nil
}

// withTenantPool runs fn on a one-connection admin pool on the tenant
// database of slug, and closes it after.
func (a *Admin) withTenantPool(ctx context.Context, slug string, fn func(pool *sql.DB) error) error {
	i, err := a.tenantIndex(slug)
	if err != nil {
		return err
	}
	database := a.opts.TenantDatabase(i)
	pool, err := pg.OpenPool(a.opts.AdminDSN(database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := fn(pool); err != nil {
		if pg.IsPgError(err, "3D000") {
			return fmt.Errorf("tenant %s: database %q is missing; run `tenancy setup` first", slug, database)
		}
		return fmt.Errorf("tenant %s: %w", slug, pg.Classify(err))
	}
	return nil
}

// ExistingSlugs asks every tenant database, several at a time: each answer
// needs a connection of its own.
func (a *Admin) ExistingSlugs(ctx context.Context, slugs []string) ([]string, error) {
	found := make([]bool, len(slugs))
	errs := make([]error, len(slugs))
	pg.ForEachIndex(len(slugs), setupWorkers, func(i int) {
		var n int64
		errs[i] = a.withTenantAdmin(ctx, slugs[i], func(db *gorm.DB) error {
			return db.Model(&models.Account{}).Count(&n).Error
		})
		found[i] = n > 0
	})
	if err := pg.FirstErrors(errs); err != nil {
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

func (a *Admin) CreateTenant(ctx context.Context, acct models.Account, commit bool, fill func(tx *gorm.DB) error) error {
	return a.withTenantAdmin(ctx, acct.Slug, func(db *gorm.DB) error {
		return pg.CreateTenantTx(ctx, db, commit, func(tx *gorm.DB, work context.Context) error {
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
// in each table. Nothing is asked of the Database: it holds this one
// account, so while the account is missing its tables are empty and every
// id is free, and the ids are the same in every run, in any order, after
// an interrupted run or a reset too.
func (a *Admin) AssignIDs(_ context.Context, d *strategy.TenantData) error {
	i, err := a.tenantIndex(d.Account.Slug)
	if err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, err)
	}
	fromOne := func(i int) int64 { return int64(i) + 1 }
	pg.FillIDs(pg.Layout{FixedIDs: true}, d, int64(i)+1, fromOne, fromOne, fromOne, fromOne)
	return nil
}

func (a *Admin) LoadTenant(ctx context.Context, d *strategy.TenantData, commit bool) error {
	if !d.HasIDs() {
		if err := a.AssignIDs(ctx, d); err != nil {
			return err
		}
	}
	return a.withTenantPool(ctx, d.Account.Slug, func(pool *sql.DB) error {
		return pg.LoadTenant(ctx, pool, pg.Layout{FixedIDs: true}, d, commit)
	})
}

// Flush needs no particular tenant Database: the write-ahead log is the
// cluster's, so one synchronous commit anywhere flushes every database's.
func (a *Admin) Flush(ctx context.Context) error {
	return pg.WithMaintenance(ctx, a.opts, func(m *sql.DB) error {
		return pg.Classify(pg.FlushWAL(ctx, m))
	})
}

// Reset empties every tenant database (they stay, migrated, ready to seed).
func (a *Admin) Reset(ctx context.Context) (int, error) {
	counts := make([]int, a.opts.TenantCount)
	errs := make([]error, a.opts.TenantCount)
	pg.ForEachIndex(a.opts.TenantCount, setupWorkers, func(i int) {
		errs[i] = a.withTenantPool(ctx, strategy.Slug(i), func(pool *sql.DB) error {
			var err error
			counts[i], err = pg.TruncateTenantTables(ctx, pool)
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
	if err := pg.FirstErrors(errs); err != nil {
		return total, fmt.Errorf("reset: %d of %d tenant databases were emptied (%d accounts removed) before these failed: %w; fix the cause and run it again",
			emptied, len(errs), total, err)
	}
	return total, nil
}

// CanBulkLoad is false: each multidb tenant database holds one account, so
// there is nothing to gain from one transaction over many.
func (a *Admin) CanBulkLoad(context.Context) (bool, error) { return false, nil }

func (a *Admin) BulkLoad(context.Context, <-chan *strategy.TenantData, bool, func(*strategy.TenantData)) error {
	return fmt.Errorf("bulk load: %w", strategy.ErrNotSupported)
}

func (a *Admin) Close() error { return nil }

// Destroy drops every tenant database, the template, the base database and
// the app role.
func (a *Admin) Destroy(ctx context.Context) error {
	dbs := []string{a.opts.Database, a.templateDatabase()}
	for i := range a.opts.TenantCount {
		dbs = append(dbs, a.opts.TenantDatabase(i))
	}
	return pg.Destroy(ctx, a.opts, dbs, []string{a.opts.AppUser, a.opts.CountsOwner()})
}
