package singleschema

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/accountdir"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/singleschema/migrations"
	"time"

	"gorm.io/gorm"
)

// NewAdmin returns the setup/migrate/seed side of singleschema, as the
// admin role. It connects only when first used.
func NewAdmin(opts strategy.Options) (*Admin, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	a := &Admin{opts: opts, admin: pg.NewLazyConn(opts.AdminDSN(opts.Database), adminConns, func(pool *sql.DB) (*gorm.DB, error) {
		return newScopedGorm(pool, opts)
	})}
	a.Directory = a.directory()
	a.Roster = operators.Roster{DB: a.admin}
	return a, nil
}

// Admin sets up and fills the shared database as the admin role.
type Admin struct {
	opts  strategy.Options
	admin *pg.LazyConn
	// The tenant directory: ListTenants, LookUpTenant, AddTenant.
	accountdir.Directory
	// The operators, who belong to no tenant: kept in the shared
	// database's public schema, outside row-level security.
	operators.Roster
}

func (a *Admin) Name() string { return strategy.SingleSchema }

// conn opens the admin pool on the (by now existing) database.
func (a *Admin) conn() (*sql.DB, *gorm.DB, error) { return a.admin.Get() }

func (a *Admin) Setup(ctx context.Context, progress io.Writer) (strategy.Report, error) {
	start := time.Now()
	rep := strategy.DatabaseReport{Database: a.opts.Database}
	err := pg.WithMaintenance(ctx, a.opts, func(m *sql.DB) error {
		if err := audit.AdminRole(ctx, m, strategy.SingleSchema, audit.SingleSchemaAdminWhy); err != nil {
			return err
		}
		roles, err := a.roleDatabase(ctx, m)
		if err != nil {
			return err
		}
		if roles != m {
			defer roles.Close()
		}
		for _, r := range []pg.RoleSpec{
			{Name: a.opts.AppUser, Password: a.opts.AppPassword},
			{Name: a.opts.ReaderUser, Password: a.opts.ReaderPassword, BypassRLS: true},
			{Name: a.opts.CountsOwner(), NoLogin: true},
		} {
			created, err := pg.EnsureRole(ctx, roles, r)
			if err != nil {
				return err
			}
			if created && progress != nil {
				fmt.Fprintf(progress, "role %s: created\n", r.Name)
			}
		}
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

// Migrate migrates the one database every tenant shares: o's jobs and
// canaries have no fleet to apply to here.
func (a *Admin) Migrate(ctx context.Context, progress io.Writer, _ strategy.MigrateOptions) (strategy.Report, error) {
	start := time.Now()
	rep := strategy.DatabaseReport{Database: a.opts.Database}
	rep.Err = a.migrate(ctx, &rep)
	rep.MigrateTime = time.Since(start)
	pg.PrintReport(progress, rep)
	out := strategy.Report{Databases: []strategy.DatabaseReport{rep}, Elapsed: time.Since(start)}
	return out, out.Err()
}

func (a *Admin) migrate(ctx context.Context, rep *strategy.DatabaseReport) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	if err := pg.Migrate(ctx, pool, pg.WithoutNewest(migrations.FS(), a.opts.HoldBackMigrations), "", rep); err != nil {
		return pg.Classify(err)
	}
	citus, err := pg.IsCitus(ctx, pool)
	if err != nil {
		return err
	}
	// Only a schema at 00009_distributable.sql or later can be
	// distributed; one held back before it stays on the coordinator until
	// a migrate applies it.
	distributed := citus && rep.To >= distributableVersion
	if err := operators.Migrate(ctx, pool, rep); err != nil {
		return pg.Classify(err)
	}
	// On Citus, everything the shards need before there are any: the
	// hook that grants INSERT (id) on each shard as Citus creates it, and
	// the tables' grants, which Citus copies onto the shards it makes.
	// Distributed first, a table's shards would refuse the app role from
	// the moment the distribution commits until the grants that follow
	// it, and a server waiting for the distribution starts serving then.
	if distributed {
		if err := installShardGrantHook(ctx, pool, a.opts.AppUser); err != nil {
			return pg.Classify(err)
		}
	}
	err = pg.Grants(ctx, pool, pg.GrantSpec{Database: a.opts.Database, App: a.opts.AppUser, Reader: a.opts.ReaderUser,
		Counter: a.opts.CountsOwner(), RLS: true, Citus: distributed, ShardIDs: pg.ShardGrantTables(), Also: operators.Grants(a.opts.AppUser)})
	if err != nil || !distributed {
		return pg.Classify(err)
	}
	moved, err := distribute(ctx, pool)
	if err != nil || !moved {
		return pg.Classify(err)
	}
	repaired, err := grantMissingShardIDs(ctx, pool, a.opts.AppUser)
	if len(repaired) > 0 {
		rep.Repaired = append(rep.Repaired, fmt.Sprintf("INSERT (id) for %s on the new shards %s, which the grant hook missed", a.opts.AppUser, strings.Join(repaired, ", ")))
	}
	return pg.Classify(err)
}

func (a *Admin) ExistingSlugs(ctx context.Context, slugs []string) ([]string, error) {
	pool, db, err := a.conn()
	if err != nil {
		return nil, err
	}
	if err := audit.AdminRole(ctx, pool, strategy.SingleSchema, audit.SingleSchemaAdminWhy); err != nil {
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
		if err := setTenant(tx, int64(acct.ID), transactionLocal); err != nil {
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
	if err := audit.AdminRole(ctx, pool, strategy.SingleSchema, audit.SingleSchemaAdminWhy); err != nil {
		return 0, err
	}
	n, err := pg.TruncateTenantTables(ctx, pool)
	if err != nil {
		return 0, fmt.Errorf("reset %s: %w", a.opts.Database, pg.Classify(err))
	}
	return n, nil
}

func (a *Admin) Close() error { return a.admin.Close() }

// Destroy drops the database and the app and reader roles.
func (a *Admin) Destroy(ctx context.Context) error {
	if err := a.Close(); err != nil {
		return err
	}
	return pg.Destroy(ctx, a.opts, []string{a.opts.Database}, []string{a.opts.AppUser, a.opts.ReaderUser, a.opts.CountsOwner()})
}
