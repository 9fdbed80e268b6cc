package multidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/fleet"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multidb/directory"
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
	base := pg.NewLazyConn(opts.AdminDSN(opts.Database), 2, func(pool *sql.DB) (*gorm.DB, error) {
		return newMultiDBGorm(pool, opts)
	})
	return &Admin{opts: opts, base: base, Roster: operators.Roster{DB: base}}, nil
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
	// base is the admin's pool on the base database, where the tenant
	// directory is.
	base *pg.LazyConn
	// The operators, who belong to no tenant: kept in the base database,
	// beside the tenant directory.
	operators.Roster
}

func (a *Admin) Name() string { return strategy.MultiDB }

// setupWorkers bounds how many tenant databases are created and migrated at
// once; PostgreSQL serialises much of CREATE DATABASE anyway.
const setupWorkers = 4

func (a *Admin) Setup(ctx context.Context, progress io.Writer) (strategy.Report, error) {
	start := time.Now()
	tmpl := strategy.DatabaseReport{Database: a.templateDatabase()}
	var baseCreated bool
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
		var err error
		baseCreated, err = pg.EnsureDatabase(ctx, m, a.opts.Database)
		if err != nil {
			return err
		}
		if baseCreated && progress != nil {
			fmt.Fprintf(progress, "%s: created (holds no tenant data)\n", a.opts.Database)
		}
		// The base database holds the tenant directory, which the server
		// reads, and nothing else.
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
	baseRep := strategy.DatabaseReport{Database: a.opts.Database, Created: baseCreated}
	t0 := time.Now()
	baseRep.Err = a.migrateBase(ctx, &baseRep)
	baseRep.MigrateTime = time.Since(t0)
	pg.PrintReport(progress, baseRep)
	if baseRep.Err != nil {
		out := strategy.Report{Databases: []strategy.DatabaseReport{baseRep}, Elapsed: time.Since(start)}
		return out, out.Err()
	}
	// Tenant databases are copies of a migrated template: CREATE DATABASE
	// ... TEMPLATE copies files, which is faster than running the
	// migrations again in every database, and a copy starts at the
	// template's version. Each is still migrated (a no-op when it is up to
	// date) and granted afterwards, so an older tenant database catches up.
	t := time.Now()
	tmpl.Err = a.migrateDatabase(ctx, a.opts, &tmpl, "")
	tmpl.MigrateTime = time.Since(t)
	pg.PrintReport(progress, tmpl)
	if tmpl.Err != nil {
		out := strategy.Report{Databases: []strategy.DatabaseReport{baseRep, tmpl}, Elapsed: time.Since(start)}
		return out, out.Err()
	}
	// MULTIDB_COUNT is the default set of tenants: setup lists
	// tenant-0 .. tenant-(MULTIDB_COUNT-1) when they are missing; from
	// then on the directory says which tenants there are.
	pool, _, err := a.base.Get()
	if err == nil {
		var added int
		added, err = directory.Register(ctx, pool, a.opts, a.opts.TenantCount)
		if err == nil && added > 0 && progress != nil {
			fmt.Fprintf(progress, "tenant directory: %d of tenant-0 to tenant-%d added\n", added, a.opts.TenantCount-1)
		}
	}
	if err != nil {
		return strategy.Report{Databases: []strategy.DatabaseReport{baseRep, tmpl}, Elapsed: time.Since(start)}, err
	}
	// Setup attempts every tenant, whatever fails: it is run to build
	// the deployment, and each tenant is reported.
	out, err := a.eachTenant(ctx, progress, true, a.privilegesOf(ctx, tmpl.Database), strategy.MigrateOptions{Continue: true})
	out.Databases = append([]strategy.DatabaseReport{baseRep, tmpl}, out.Databases...)
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

// Migrate brings the base database (the directory) and the template
// database up to date first, so tenant databases created from it later
// start current, then every tenant database in the directory, as o says;
// see migrateDatabase for what a tenant already current costs.
func (a *Admin) Migrate(ctx context.Context, progress io.Writer, o strategy.MigrateOptions) (strategy.Report, error) {
	start := time.Now()
	baseRep := strategy.DatabaseReport{Database: a.opts.Database}
	baseRep.Err = a.migrateBase(ctx, &baseRep)
	baseRep.MigrateTime = time.Since(start)
	pg.PrintReport(progress, baseRep)
	if baseRep.Err != nil {
		out := strategy.Report{Databases: []strategy.DatabaseReport{baseRep}, Elapsed: time.Since(start)}
		return out, out.Err()
	}
	shared := []strategy.DatabaseReport{baseRep}
	t := time.Now()
	tmpl := strategy.DatabaseReport{Database: a.templateDatabase()}
	tmpl.Err = a.migrateDatabase(ctx, a.opts, &tmpl, "")
	tmpl.MigrateTime = time.Since(t)
	var granted string
	switch {
	case tmpl.Err == nil:
		pg.PrintReport(progress, tmpl)
		shared = append(shared, tmpl)
		granted = a.privilegesOf(ctx, tmpl.Database)
	case errors.Is(tmpl.Err, errDatabaseMissing):
		// A deployment set up before tenant databases were copied from a
		// template has none; its tenants are still migrated, and granted.
	default:
		pg.PrintReport(progress, tmpl)
		out := strategy.Report{Databases: append(shared, tmpl), Elapsed: time.Since(start)}
		return out, out.Err()
	}
	out, err := a.eachTenant(ctx, progress, false, granted, o)
	out.Databases = append(shared, out.Databases...)
	out.Elapsed = time.Since(start)
	return out, err
}

// privilegesOf is the privileges fingerprint of a database of the
// deployment's server just granted, or "" when it cannot be read (every
// tenant is then granted again).
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

// migrateBase runs the base database's migrations (the tenant directory,
// the operators' tables) and gives the app role what the server needs
// there: reading the directory and the operators, recording sign-outs.
func (a *Admin) migrateBase(ctx context.Context, rep *strategy.DatabaseReport) error {
	pool, _, err := a.base.Get()
	if err != nil {
		return err
	}
	if err := pg.Migrate(ctx, pool, directory.Migrations(), "", rep); err != nil {
		return pg.Classify(err)
	}
	if err := operators.Migrate(ctx, pool, rep); err != nil {
		return pg.Classify(err)
	}
	return pg.Classify(pg.WithTx(ctx, pool, func(tx *sql.Tx) error {
		for _, stmt := range append([]string{
			"REVOKE ALL ON " + directory.Table + " FROM PUBLIC, " + pg.QuoteIdent(a.opts.AppUser),
			"GRANT SELECT ON " + directory.Table + " TO " + pg.QuoteIdent(a.opts.AppUser),
		}, operators.Grants(a.opts.AppUser)...) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", stmt, err)
			}
		}
		return nil
	}))
}

// tenants lists the directory: every tenant, where it is.
func (a *Admin) tenants(ctx context.Context) ([]directory.Entry, error) {
	pool, _, err := a.base.Get()
	if err != nil {
		return nil, err
	}
	return directory.List(ctx, pool)
}

// entry is slug's row of the directory, or ErrTenantNotFound saying how
// to make one.
func (a *Admin) entry(ctx context.Context, slug string) (directory.Entry, error) {
	pool, _, err := a.base.Get()
	if err != nil {
		return directory.Entry{}, err
	}
	e, err := directory.Get(ctx, pool, slug)
	if errors.Is(err, strategy.ErrTenantNotFound) {
		return e, fmt.Errorf("%w; `tenancy tenant create %s` adds it (for tenant-<n>, so does `tenancy setup` with MULTIDB_COUNT above n)", err, slug)
	}
	return e, err
}

// eachTenant migrates every tenant database in the directory (creating
// missing ones when create is set) as o says, and reports each by name,
// failures and those not attempted included.
func (a *Admin) eachTenant(ctx context.Context, progress io.Writer, create bool, granted string, o strategy.MigrateOptions) (strategy.Report, error) {
	entries, err := a.tenants(ctx)
	if err != nil {
		return strategy.Report{}, err
	}
	if create {
		if err := a.prepareServers(ctx, progress, entries); err != nil {
			return strategy.Report{}, err
		}
	}
	reps := make([]strategy.DatabaseReport, len(entries))
	for i, e := range entries {
		reps[i].Tenant, reps[i].Database = e.Slug, e.Key()
	}
	fleet.Run(ctx, reps, o, setupWorkers, func(ctx context.Context, i int, rep *strategy.DatabaseReport) {
		rep.Err = a.setupTenant(ctx, entries[i], rep, create, granted)
	}, func(rep strategy.DatabaseReport) { pg.PrintReport(progress, rep) })
	out := strategy.Report{Databases: reps}
	return out, out.Err()
}

// prepareServers readies every other server that the directory names for
// tenant databases, once each (see prepareServer).
func (a *Admin) prepareServers(ctx context.Context, progress io.Writer, entries []directory.Entry) error {
	done := map[string]bool{}
	for _, e := range entries {
		if e.Host == "" || done[e.Address()] {
			continue
		}
		done[e.Address()] = true
		if err := a.prepareServer(ctx, progress, e.Server(a.opts)); err != nil {
			return err
		}
	}
	return nil
}

// prepareServer gives another PostgreSQL server what a tenant database
// there needs: the app role (with its password) and the counts owner,
// and a migrated template of its own, as setup does on the deployment's
// server.
func (a *Admin) prepareServer(ctx context.Context, progress io.Writer, o strategy.Options) error {
	tmpl := strategy.DatabaseReport{Database: a.templateDatabase() + "@" + net.JoinHostPort(o.Host, strconv.Itoa(o.Port))}
	err := pg.WithMaintenance(ctx, o, func(m *sql.DB) error {
		for _, r := range []pg.RoleSpec{
			{Name: o.AppUser, Password: o.AppPassword},
			{Name: o.CountsOwner(), NoLogin: true},
		} {
			if _, err := pg.EnsureRole(ctx, m, r); err != nil {
				return err
			}
		}
		var err error
		tmpl.Created, err = pg.EnsureDatabase(ctx, m, a.templateDatabase())
		return err
	})
	if err != nil {
		return fmt.Errorf("prepare server %s:%d for tenant databases: %w", o.Host, o.Port, err)
	}
	if tmpl.Created {
		rep := tmpl
		rep.Database = a.templateDatabase()
		if err := a.migrateDatabase(ctx, o, &rep, ""); err != nil {
			return fmt.Errorf("prepare server %s:%d for tenant databases: %w", o.Host, o.Port, err)
		}
		rep.Database = tmpl.Database
		pg.PrintReport(progress, rep)
	}
	return nil
}

func (a *Admin) setupTenant(ctx context.Context, e directory.Entry, rep *strategy.DatabaseReport, create bool, granted string) error {
	o := e.Server(a.opts)
	if create {
		t := time.Now()
		err := pg.WithMaintenance(ctx, o, func(m *sql.DB) error {
			var err error
			rep.Created, err = pg.EnsureDatabaseFrom(ctx, m, e.Database, a.templateDatabase())
			return err
		})
		rep.CreateTime = time.Since(t)
		if err != nil {
			return err
		}
	}
	t := time.Now()
	defer func() { rep.MigrateTime = time.Since(t) }()
	r := *rep
	r.Database = e.Database
	err := a.migrateDatabase(ctx, o, &r, granted)
	rep.From, rep.To, rep.Applied = r.From, r.To, r.Applied
	return err
}

// errDatabaseMissing: a database the deployment should have is not there.
var errDatabaseMissing = errors.New("database missing")

// migrateDatabase runs pending migrations and the grants on one database
// of the server o points at. A database at every version is only read
// (goose would make several round trips to find nothing to do), and when
// granted is the fingerprint of a database granted just now (the
// template) and this one's is equal, its privileges are already exactly
// what Grants makes and the grants transaction is skipped; any
// difference, drift by hand included, is granted again.
func (a *Admin) migrateDatabase(ctx context.Context, o strategy.Options, rep *strategy.DatabaseReport, granted string) error {
	pool, err := pg.OpenPool(o.AdminDSN(rep.Database), 1, 1)
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

// withTenantPool runs fn on a one-connection admin pool on the tenant
// database of slug, and closes it after.
func (a *Admin) withTenantPool(ctx context.Context, slug string, fn func(pool *sql.DB) error) error {
	e, err := a.entry(ctx, slug)
	if err != nil {
		return err
	}
	return a.withEntryPool(ctx, e, fn)
}

// withEntryPool runs fn on a one-connection admin pool on e's database.
func (a *Admin) withEntryPool(ctx context.Context, e directory.Entry, fn func(pool *sql.DB) error) error {
	pool, err := pg.OpenPool(e.Server(a.opts).AdminDSN(e.Database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := fn(pool); err != nil {
		if pg.IsPgError(err, "3D000") {
			return fmt.Errorf("tenant %s: %s is missing; run `tenancy setup` first", e.Slug, e.Location(a.opts))
		}
		return fmt.Errorf("tenant %s: %w", e.Slug, pg.Classify(err))
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
		if errors.Is(errs[i], strategy.ErrTenantNotFound) {
			errs[i] = fmt.Errorf("%w; seeding multidb needs each tenant in the directory first", errs[i])
		}
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
	e, err := a.entry(ctx, acct.Slug)
	if err != nil {
		return err
	}
	return a.named(ctx, e, acct, commit, func() error {
		return a.createAccount(ctx, e, acct, commit, fill)
	})
}

// createAccount writes acct, with the id the directory gave its tenant,
// and what fill writes, into e's database.
func (a *Admin) createAccount(ctx context.Context, e directory.Entry, acct models.Account, commit bool, fill func(tx *gorm.DB) error) error {
	if acct.ID == 0 {
		acct.ID = e.ID
	}
	return a.withEntryPool(ctx, e, func(pool *sql.DB) error {
		root, err := newMultiDBGorm(pool, a.opts)
		if err != nil {
			return err
		}
		db := root.WithContext(ctx)
		return pg.CreateTenantTx(ctx, db, commit, func(tx *gorm.DB, work context.Context) error {
			// The account's id comes from its database, so the tenant goes on
			// the context once the row exists.
			// The id is the directory's (the column is GENERATED ALWAYS:
			// only the admin writes one it chose).
			if err := tx.Exec("INSERT INTO accounts (id, slug, name) OVERRIDING SYSTEM VALUE VALUES (?, ?, ?)", int64(acct.ID), acct.Slug, acct.Name).Error; err != nil {
				return fmt.Errorf("create account: %w", err)
			}
			if fill == nil {
				return nil
			}
			return fill(tx.WithContext(models.NewContextWithTenant(work, acct)))
		})
	})
}

// AssignIDs gives the account the id its tenant has in the directory
// (tenant-i, registered by setup, has i+1, the id it has in a fresh
// singleschema deployment) and its rows ids from 1 in each table. Nothing
// is asked of the tenant's database: it holds this one account, so while
// the account is missing its tables are empty and every id is free, and
// the ids are the same in every run, in any order, after an interrupted
// run or a reset too. A tenant the directory does not list yet (an
// import under a slug of its own; LoadTenant creates it) gets an id drawn
// from the directory's sequence, as AddTenant's does.
func (a *Admin) AssignIDs(ctx context.Context, d *strategy.TenantData) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, err)
	}
	id, err := a.idOf(ctx, d.Account.Slug)
	if err != nil {
		return err
	}
	fromOne := func(i int) int64 { return int64(i) + 1 }
	pg.FillIDs(pg.Layout{FixedIDs: true}, d, int64(id), fromOne, fromOne, fromOne, fromOne)
	return nil
}

// idOf is slug's id in the directory or, for a slug it does not list and
// that could name a new tenant, a fresh one.
func (a *Admin) idOf(ctx context.Context, slug string) (models.TenantID, error) {
	e, err := a.entry(ctx, slug)
	switch {
	case err == nil:
		return e.ID, nil
	case !errors.Is(err, strategy.ErrTenantNotFound):
		return 0, err
	}
	if err := strategy.ValidateSlug(slug); err != nil {
		return 0, err
	}
	if _, err := a.tenantDatabaseOf(slug); err != nil {
		return 0, err
	}
	pool, _, err := a.base.Get()
	if err != nil {
		return 0, err
	}
	return directory.NextID(ctx, pool)
}

// LoadTenant loads d into its tenant's database; a tenant the directory
// does not list yet is created with it (loadNewTenant).
func (a *Admin) LoadTenant(ctx context.Context, d *strategy.TenantData, commit bool) error {
	if !d.HasIDs() {
		if err := a.AssignIDs(ctx, d); err != nil {
			return err
		}
	}
	e, err := a.entry(ctx, d.Account.Slug)
	switch {
	case errors.Is(err, strategy.ErrTenantNotFound):
		return a.loadNewTenant(ctx, d, commit)
	case err != nil:
		return err
	}
	return a.named(ctx, e, d.Account, commit, func() error {
		return a.withEntryPool(ctx, e, func(pool *sql.DB) error {
			return pg.LoadTenant(ctx, pool, pg.Layout{FixedIDs: true}, d, commit)
		})
	})
}

// named runs write, which writes acct into e's database, with acct's name
// copied into the directory (for `tenancy tenant list` and the base
// domain's list of tenants: setup lists tenant-i before it has an
// account). The name goes in first: after write commits, an error would
// claim that nothing was written. When write fails the directory gets
// back the name it had, so a refused seed or import leaves it as it was.
func (a *Admin) named(ctx context.Context, e directory.Entry, acct models.Account, commit bool, write func() error) error {
	if !commit || e.Name == acct.Name {
		return write()
	}
	if err := a.renameInDirectory(ctx, acct.Slug, e.Name, acct.Name); err != nil {
		return err
	}
	err := write()
	if err != nil {
		back, cancel := pg.WithTimeout(context.WithoutCancel(ctx))
		defer cancel()
		if rerr := a.renameInDirectory(back, acct.Slug, acct.Name, e.Name); rerr != nil {
			return fmt.Errorf("%w; and its name in the directory stays %q: %w", err, acct.Name, rerr)
		}
	}
	return err
}

// renameInDirectory changes slug's name in the directory from one name to
// another, unless someone changed it meanwhile.
func (a *Admin) renameInDirectory(ctx context.Context, slug, from, to string) error {
	pool, _, err := a.base.Get()
	if err != nil {
		return err
	}
	if _, err := pool.ExecContext(ctx, `UPDATE `+directory.Table+` SET name = $3 WHERE slug = $1 AND name = $2`, slug, from, to); err != nil {
		return fmt.Errorf("tenant %s: name it in the directory: %w", slug, pg.Classify(err))
	}
	return nil
}

// Flush needs no particular tenant Database: the write-ahead log is the
// cluster's, so one synchronous commit anywhere flushes every database's.
func (a *Admin) Flush(ctx context.Context) error {
	return pg.WithMaintenance(ctx, a.opts, func(m *sql.DB) error {
		return pg.Classify(pg.FlushWAL(ctx, m))
	})
}

// Reset empties every tenant database in the directory (they stay,
// migrated, listed, ready to seed).
func (a *Admin) Reset(ctx context.Context) (int, error) {
	entries, err := a.tenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("reset: %w", err)
	}
	counts := make([]int, len(entries))
	errs := make([]error, len(entries))
	pg.ForEachIndex(len(entries), setupWorkers, func(i int) {
		errs[i] = a.withEntryPool(ctx, entries[i], func(pool *sql.DB) error {
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

func (a *Admin) Close() error { return a.base.Close() }

// Destroy drops every tenant database in the directory (and, on other
// servers, their templates and roles), the template, the base database
// and the app role.
func (a *Admin) Destroy(ctx context.Context) error {
	entries, err := a.tenants(ctx)
	if err != nil && !pg.IsPgError(err, "3D000") && !pg.IsPgError(err, "42P01") {
		return fmt.Errorf("destroy: %w", err)
	}
	if err := a.Close(); err != nil {
		return err
	}
	dbs := []string{a.opts.Database, a.templateDatabase()}
	for i := range a.opts.TenantCount {
		dbs = append(dbs, a.opts.TenantDatabase(i))
	}
	elsewhere := map[string][]string{}
	others := map[string]strategy.Options{}
	for _, e := range entries {
		if e.Host == "" {
			dbs = append(dbs, e.Database)
			continue
		}
		elsewhere[e.Address()] = append(elsewhere[e.Address()], e.Database)
		others[e.Address()] = e.Server(a.opts)
	}
	var errs []error
	for addr, names := range elsewhere {
		err := pg.Destroy(ctx, others[addr], append(names, a.templateDatabase()), []string{a.opts.AppUser, a.opts.CountsOwner()})
		if err != nil {
			errs = append(errs, fmt.Errorf("on %s: %w", addr, err))
		}
	}
	slices.Sort(dbs)
	dbs = slices.Compact(dbs)
	errs = append(errs, pg.Destroy(ctx, a.opts, dbs, []string{a.opts.AppUser, a.opts.CountsOwner()}))
	return errors.Join(errs...)
}
