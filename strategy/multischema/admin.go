package multischema

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/accountdir"
	"tenancy/strategy/internal/claim"
	"tenancy/strategy/internal/fleet"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multischema/migrations"
)

// NewAdmin returns the setup/migrate/seed side of multischema, as the
// admin role. It connects only when first used.
func NewAdmin(opts strategy.Options) (*Admin, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	a := &Admin{opts: opts, admin: pg.NewLazyConn(opts.AdminDSN(opts.Database), adminConns, func(pool *sql.DB) (*gorm.DB, error) {
		return pg.NewGorm(pool, opts.Log(), claim.OwnTables{})
	})}
	a.Directory = a.directory()
	a.Roster = operators.Roster{DB: a.admin}
	return a, nil
}

// Admin sets up the database and each tenant's schema, and fills them, as
// the admin role.
type Admin struct {
	opts  strategy.Options
	admin *pg.LazyConn
	// The tenant directory: ListTenants, LookUpTenant, AddTenant.
	accountdir.Directory
	// The operators, who belong to no tenant: kept in the public schema,
	// beside the accounts.
	operators.Roster
}

func (a *Admin) Name() string { return strategy.MultiSchema }

// adminConns is enough connections for the seeder's and the migrations'
// workers.
const adminConns = 8

// schemaWorkers bounds how many tenant schemas are migrated at once.
const schemaWorkers = 4

// adminWhy is why multischema's admin must be a superuser.
const adminWhy = "it creates a role per tenant and makes the app role a member of each, and loads rows with ids of their own"

// conn opens the admin pool on the (by now existing) database.
func (a *Admin) conn() (*sql.DB, *gorm.DB, error) { return a.admin.Get() }

func (a *Admin) Setup(ctx context.Context, progress io.Writer) (strategy.Report, error) {
	start := time.Now()
	rep := strategy.DatabaseReport{Database: a.opts.Database}
	err := pg.WithMaintenance(ctx, a.opts, func(m *sql.DB) error {
		if err := audit.AdminRole(ctx, m, strategy.MultiSchema, adminWhy); err != nil {
			return err
		}
		for _, r := range []pg.RoleSpec{
			{Name: a.opts.AppUser, Password: a.opts.AppPassword, NoInherit: true},
			{Name: a.opts.ReaderUser, Password: a.opts.ReaderPassword},
			{Name: a.opts.CountsOwner(), NoLogin: true},
			{Name: TenantsRole(a.opts), NoLogin: true},
		} {
			created, err := pg.EnsureRole(ctx, m, r)
			if err != nil {
				return err
			}
			if created && progress != nil {
				fmt.Fprintf(progress, "role %s: created\n", r.Name)
			}
		}
		// The reader sees every tenant, so it writes nothing, by default
		// and by its grants.
		if _, err := m.ExecContext(ctx, "ALTER ROLE "+pg.QuoteIdent(a.opts.ReaderUser)+" SET default_transaction_read_only = on"); err != nil {
			return fmt.Errorf("make role %q read-only: %w", a.opts.ReaderUser, err)
		}
		t := time.Now()
		var err error
		rep.Created, err = pg.EnsureDatabase(ctx, m, a.opts.Database)
		rep.CreateTime = time.Since(t)
		return err
	})
	if err != nil {
		return strategy.Report{}, err
	}
	// Setup attempts every tenant, whatever fails: it is run to build
	// the deployment, and each tenant is reported.
	out, err := a.migrate(ctx, progress, rep, strategy.MigrateOptions{Continue: true})
	out.Elapsed = time.Since(start)
	return out, err
}

func (a *Admin) Migrate(ctx context.Context, progress io.Writer, o strategy.MigrateOptions) (strategy.Report, error) {
	start := time.Now()
	out, err := a.migrate(ctx, progress, strategy.DatabaseReport{Database: a.opts.Database}, o)
	out.Elapsed = time.Since(start)
	return out, err
}

// migrate runs the shared migrations and grants, then every tenant's
// schema's as o says, each reported by name, failures and those not
// attempted included.
func (a *Admin) migrate(ctx context.Context, progress io.Writer, shared strategy.DatabaseReport, o strategy.MigrateOptions) (strategy.Report, error) {
	pool, _, err := a.conn()
	if err != nil {
		return strategy.Report{}, err
	}
	t := time.Now()
	shared.Err = pg.Classify(pg.Migrate(ctx, pool, migrations.Shared(), "", &shared))
	if shared.Err == nil {
		shared.Err = pg.Classify(operators.Migrate(ctx, pool, &shared))
	}
	if shared.Err == nil {
		shared.Err = pg.Classify(sharedGrants(ctx, pool, a.opts))
	}
	shared.MigrateTime = time.Since(t)
	pg.PrintReport(progress, shared)
	out := strategy.Report{Databases: []strategy.DatabaseReport{shared}}
	if shared.Err != nil {
		return out, out.Err()
	}
	tenants, err := a.accountsByID(ctx, pool)
	if err != nil {
		return out, err
	}
	reps := make([]strategy.DatabaseReport, len(tenants))
	for i, t := range tenants {
		reps[i].Tenant, reps[i].Database = t.Slug, SchemaOf(t.ID)
	}
	fleet.Run(ctx, reps, o, schemaWorkers, func(ctx context.Context, i int, rep *strategy.DatabaseReport) {
		id := tenants[i].ID
		err := a.ensureTenant(ctx, pool, id, rep)
		if err == nil && rep.Created {
			err = restoreCounts(ctx, pool, id)
		}
		rep.Err = pg.Classify(err)
	}, func(rep strategy.DatabaseReport) { pg.PrintReport(progress, rep) })
	out.Databases = append(out.Databases, reps...)
	return out, out.Err()
}

// restoreCounts gives an account whose schema had to be made again (it
// had been dropped, and its rows with it) the counts of its new, empty
// schema: a counts row, and 0 in the totals.
func restoreCounts(ctx context.Context, pool *sql.DB, id models.TenantID) error {
	return pg.WithTx(ctx, pool, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+pg.QuoteIdent(SchemaOf(id))+".subtask_counts (account_id) VALUES ($1) ON CONFLICT DO NOTHING", int64(id)); err != nil {
			return fmt.Errorf("restore the counts of %s: %w", SchemaOf(id), err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO public.tenant_totals (account_id) VALUES ($1)
			ON CONFLICT (account_id) DO UPDATE SET subtasks = 0`, int64(id))
		return err
	})
}

// tenantIDs lists the accounts, whose schemas are the tenants'.
func (a *Admin) tenantIDs(ctx context.Context, pool *sql.DB) ([]models.TenantID, error) {
	tenants, err := a.accountsByID(ctx, pool)
	ids := make([]models.TenantID, len(tenants))
	for i, t := range tenants {
		ids[i] = t.ID
	}
	return ids, err
}

// accountsByID lists every account's id and slug, by id.
func (a *Admin) accountsByID(ctx context.Context, pool *sql.DB) ([]models.Account, error) {
	rows, err := pool.QueryContext(ctx, `SELECT id, slug FROM public.accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", pg.Classify(err))
	}
	defer rows.Close()
	var out []models.Account
	for rows.Next() {
		var a models.Account
		if err := rows.Scan(&a.ID, &a.Slug); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (a *Admin) ExistingSlugs(ctx context.Context, slugs []string) ([]string, error) {
	_, db, err := a.conn()
	if err != nil {
		return nil, err
	}
	var found []string
	err = db.WithContext(ctx).Model(&models.Account{}).Where("slug IN ?", slugs).Order("id").Pluck("slug", &found).Error
	if err != nil {
		return nil, fmt.Errorf("look up existing accounts: %w", pg.Classify(err))
	}
	return found, nil
}

// countsRows are the statements that give a new account its counts rows:
// its schema's, and its line in the shared totals (pgx's $1 is its id).
// Names are qualified: pgx prepares them before the load's search_path is
// set.
func countsRows(schema string) []string {
	return []string{
		"INSERT INTO " + pg.QuoteIdent(schema) + ".subtask_counts (account_id) VALUES ($1)",
		"INSERT INTO public.tenant_totals (account_id) VALUES ($1)",
	}
}

// CreateTenant makes the account's schema and role, then writes the
// account and whatever fill writes in one transaction, in the account's
// schema. The account's id is drawn first, so the schema can be named
// after it; a schema left without an account (a rollback, a failure) is
// dropped again.
func (a *Admin) CreateTenant(ctx context.Context, acct models.Account, commit bool, fill func(tx *gorm.DB) error) error {
	pool, db, err := a.conn()
	if err != nil {
		return err
	}
	if acct.ID, err = drawAccountID(ctx, pool, acct.Slug); err != nil {
		return err
	}
	var rep strategy.DatabaseReport
	if err := a.ensureTenant(ctx, pool, acct.ID, &rep); err != nil {
		return fmt.Errorf("tenant %s: %w", acct.Slug, pg.Classify(err))
	}
	err = pg.CreateTenantTx(ctx, db, commit, func(tx *gorm.DB, work context.Context) error {
		if err := tx.Exec("SELECT set_config('search_path', ?, true)", pg.QuoteIdent(SchemaOf(acct.ID))+", public").Error; err != nil {
			return err
		}
		if err := tx.Exec("INSERT INTO public.accounts (id, slug, name) OVERRIDING SYSTEM VALUE VALUES (?, ?, ?)", int64(acct.ID), acct.Slug, acct.Name).Error; err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		if err := tx.Exec("INSERT INTO subtask_counts (account_id) VALUES (?)", int64(acct.ID)).Error; err != nil {
			return fmt.Errorf("create the account's counts: %w", err)
		}
		if err := tx.Exec("INSERT INTO public.tenant_totals (account_id) VALUES (?)", int64(acct.ID)).Error; err != nil {
			return fmt.Errorf("create the account's counts: %w", err)
		}
		return fill(tx.WithContext(models.NewContextWithTenant(work, acct)))
	})
	return a.keepOrDrop(ctx, pool, acct, err)
}

// keepOrDrop drops acct's schema and role when its row was not written
// (err, or a rollback asked for), so that nothing is left of it.
func (a *Admin) keepOrDrop(ctx context.Context, pool *sql.DB, acct models.Account, err error) error {
	var exists bool
	if qerr := pool.QueryRowContext(context.WithoutCancel(ctx), `SELECT EXISTS (SELECT 1 FROM public.accounts WHERE id = $1)`, int64(acct.ID)).Scan(&exists); qerr == nil && !exists {
		if derr := a.dropTenant(context.WithoutCancel(ctx), pool, acct.ID); derr != nil && err == nil {
			err = derr
		}
	}
	if err != nil {
		return fmt.Errorf("tenant %s: %w", acct.Slug, pg.Classify(err))
	}
	return nil
}

// drawAccountID draws a new account's id from the accounts' sequence.
func drawAccountID(ctx context.Context, pool *sql.DB, slug string) (models.TenantID, error) {
	var id models.TenantID
	if err := pool.QueryRowContext(ctx, `SELECT nextval(pg_get_serial_sequence('public.accounts', 'id'))`).Scan(&id); err != nil {
		return 0, fmt.Errorf("tenant %s: allocate an account id: %w", slug, pg.Classify(err))
	}
	return id, nil
}

// AssignIDs gives the account of tenant-i the id i+1, as multidb does, and
// numbers the rows of its own schema from 1: a seeded tenant's ids depend
// on the options alone, whatever order accounts are loaded in. An account
// with a slug of its own (an import under it) gets an id drawn from the
// accounts' sequence, as AddTenant's does: loads keep the sequence past
// every id written, so it is no existing account's. (A tenant-i seeded
// later whose i+1 it took is refused by the accounts' primary key,
// writing nothing.)
func (a *Admin) AssignIDs(ctx context.Context, d *strategy.TenantData) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, err)
	}
	var id models.TenantID
	if i, ok := strategy.ParseSlug(d.Account.Slug); ok {
		id = models.TenantID(i) + 1
	} else {
		if err := strategy.ValidateSlug(d.Account.Slug); err != nil {
			return err
		}
		pool, _, err := a.conn()
		if err != nil {
			return err
		}
		if id, err = drawAccountID(ctx, pool, d.Account.Slug); err != nil {
			return err
		}
	}
	fromOne := func(i int) int64 { return int64(i) + 1 }
	pg.FillIDs(pg.Layout{FixedIDs: true}, d, int64(id), fromOne, fromOne, fromOne, fromOne)
	return nil
}

// LoadTenant makes the tenant's schema and role, then copies d into it in
// one transaction with the account's row (see pg.LoadTenant).
func (a *Admin) LoadTenant(ctx context.Context, d *strategy.TenantData, commit bool) error {
	if !d.HasIDs() {
		if err := a.AssignIDs(ctx, d); err != nil {
			return err
		}
	}
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	var rep strategy.DatabaseReport
	if err := a.ensureTenant(ctx, pool, d.Account.ID, &rep); err != nil {
		return fmt.Errorf("tenant %s: %w", d.Account.Slug, pg.Classify(err))
	}
	layout := pg.Layout{FixedIDs: true, Schema: SchemaOf(d.Account.ID), AfterAccount: countsRows(SchemaOf(d.Account.ID))}
	return a.keepOrDrop(ctx, pool, d.Account, pg.LoadTenant(ctx, pool, layout, d, commit))
}

func (a *Admin) Flush(ctx context.Context) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	return pg.Classify(pg.FlushWAL(ctx, pool))
}

// Reset drops every tenant's schema and role, then every account, and
// returns how many there were. Account ids are not reused by the sequence
// (seeded tenants get theirs from their slug).
func (a *Admin) Reset(ctx context.Context) (int, error) {
	pool, _, err := a.conn()
	if err != nil {
		return 0, err
	}
	ids, err := a.tenantIDs(ctx, pool)
	if err != nil {
		return 0, err
	}
	errs := make([]error, len(ids))
	pg.ForEachIndex(len(ids), schemaWorkers, func(i int) { errs[i] = a.dropTenant(ctx, pool, ids[i]) })
	if err := pg.FirstErrors(errs); err != nil {
		return 0, fmt.Errorf("reset: drop the tenants' schemas: %w; fix the cause and run it again", pg.Classify(err))
	}
	if _, err := pool.ExecContext(ctx, `DELETE FROM public.accounts`); err != nil {
		return 0, fmt.Errorf("reset: %w", pg.Classify(err))
	}
	return len(ids), nil
}

// CanBulkLoad is false: each tenant's rows go into a schema of their own.
func (a *Admin) CanBulkLoad(context.Context) (bool, error) { return false, nil }

func (a *Admin) BulkLoad(context.Context, <-chan *strategy.TenantData, bool, func(*strategy.TenantData)) error {
	return fmt.Errorf("bulk load: %w", strategy.ErrNotSupported)
}

func (a *Admin) Close() error { return a.admin.Close() }

// Destroy drops the database, then every tenant's role, the app, reader
// and counts roles and the role of all tenants.
func (a *Admin) Destroy(ctx context.Context) error {
	if err := a.Close(); err != nil {
		return err
	}
	var roles []string
	err := pg.WithMaintenance(ctx, a.opts, func(m *sql.DB) error {
		rows, err := m.QueryContext(ctx, `SELECT rolname FROM pg_roles WHERE rolname ~ ('^' || $1 || '_t[0-9]+$') ORDER BY 1`, a.opts.Database)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				return err
			}
			roles = append(roles, r)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	roles = append(roles, a.opts.AppUser, a.opts.ReaderUser, a.opts.CountsOwner(), TenantsRole(a.opts))
	return pg.Destroy(ctx, a.opts, []string{a.opts.Database}, roles)
}
