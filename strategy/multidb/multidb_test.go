package multidb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/strategytest"
)

// TestMultiDBKeepsTenantsInTheirDatabases: each tenant sees its own rows,
// from its own database, which holds no other tenant's rows and no
// account_id on tasks and subtasks; slugs past MULTIDB_COUNT or not
// canonical are unknown, and there is no list across all tenants.
func TestMultiDBKeepsTenantsInTheirDatabases(t *testing.T) {
	t.Parallel()
	opts, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 3)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 5)
	for _, tc := range []struct {
		tenant models.Account
		want   int
	}{{a, 3}, {b, 5}} {
		page, err := s.ListSubtasks(strategytest.TenantCtx(tc.tenant), 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != int64(tc.want) {
			t.Errorf("%s: total %d, want %d", tc.tenant.Slug, page.Total, tc.want)
		}
		for _, r := range page.Rows {
			if r.AccountSlug != tc.tenant.Slug || !strings.HasPrefix(r.Name, tc.tenant.Slug+" ") {
				t.Errorf("%s's list has row %+v", tc.tenant.Slug, r)
			}
		}
	}
	// Each tenant database holds its own rows only, and no account_id on
	// tasks and subtasks.
	var n int
	if err := pgtest.Admin(t, opts.TenantDatabase(1)).QueryRow(`SELECT count(*) FROM subtasks WHERE name LIKE 'tenant-0 %'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("tenant-1's database holds %d of tenant-0's subtasks (err %v)", n, err)
	}
	var cols int
	if err := pgtest.Admin(t, opts.TenantDatabase(0)).QueryRow(`SELECT count(*) FROM information_schema.columns WHERE table_name IN ('tasks', 'subtasks') AND column_name = 'account_id'`).Scan(&cols); err != nil || cols != 0 {
		t.Errorf("multidb tasks/subtasks have %d account_id columns (err %v), want 0", cols, err)
	}

	for _, slug := range []string{"tenant-2", "tenant-3", "tenant-01", "nobody"} {
		if _, err := s.TenantBySlug(context.Background(), slug); !errors.Is(err, strategy.ErrTenantNotFound) {
			t.Errorf("TenantBySlug(%q) err = %v, want ErrTenantNotFound", slug, err)
		}
	}
	if _, err := s.ListSubtasks(models.NewContextForAllTenants(context.Background()), 1, 10); !errors.Is(err, strategy.ErrNotSupported) {
		t.Errorf("multidb all-tenants list: err = %v, want ErrNotSupported", err)
	}
}

func TestMultiDBDroppedTenantIsUnavailable(t *testing.T) {
	t.Parallel()
	opts, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 1)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 1)
	if _, err := pgtest.Admin(t, "postgres").Exec(`DROP DATABASE "` + opts.TenantDatabase(0) + `" WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListSubtasks(strategytest.TenantCtx(a), 1, 10); !errors.Is(err, strategy.ErrUnavailable) {
		t.Errorf("list of a tenant whose database was dropped: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.ListSubtasks(strategytest.TenantCtx(b), 1, 10); err != nil {
		t.Errorf("another tenant after tenant-0's database was dropped: %v", err)
	}
}

// TestMultiDBRefusesAnUnsafeTenantDatabase: the server audits each tenant
// database before it serves that tenant the first time, and a tenant whose
// database lets the app role reach further than it should, or lacks what
// it needs, is unavailable (503) while the others are served. A grant
// revoked after the audit makes the tenant unavailable too, never a 500.
func TestMultiDBRefusesAnUnsafeTenantDatabase(t *testing.T) {
	t.Parallel()
	opts, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 1)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 1)
	db := pgtest.Admin(t, opts.TenantDatabase(1))
	app, database := pg.QuoteIdent(opts.AppUser), pg.QuoteIdent(opts.TenantDatabase(1))
	tests := []struct {
		name          string
		breakIt, undo string
		want          string // in the error
	}{
		{"TEMPORARY granted", "GRANT TEMPORARY ON DATABASE " + database + " TO " + app, "REVOKE TEMPORARY ON DATABASE " + database + " FROM " + app, "temporary"},
		{"a grant revoked", "REVOKE SELECT ON subtasks FROM " + app, "GRANT SELECT ON subtasks TO " + app, "lacks SELECT"},
		{"TRUNCATE granted", "GRANT TRUNCATE ON subtasks TO " + app, "REVOKE TRUNCATE ON subtasks FROM " + app, "TRUNCATE"},
		{"a schema named after the app role", "CREATE SCHEMA " + app, "DROP SCHEMA " + app, "schema " + app},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strategytest.MustExec(t, db, tt.breakIt)
			defer strategytest.MustExec(t, db, tt.undo)
			fresh, err := Open(context.Background(), opts)
			if err != nil {
				t.Fatalf("Open: %v (a tenant database's fault must not stop the server)", err)
			}
			defer fresh.Close()
			if _, err := fresh.ListSubtasks(strategytest.TenantCtx(b), 1, 10); !errors.Is(err, strategy.ErrTenantUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("tenant-1 with %s: err = %v, want ErrTenantUnavailable mentioning %q", tt.name, err, tt.want)
			}
			if _, err := fresh.ListSubtasks(strategytest.TenantCtx(a), 1, 10); err != nil {
				t.Errorf("tenant-0 while tenant-1's database has %s: %v", tt.name, err)
			}
		})
	}
	t.Run("a grant revoked while serving", func(t *testing.T) {
		if _, err := s.ListSubtasks(strategytest.TenantCtx(b), 1, 10); err != nil {
			t.Fatalf("tenant-1 before: %v", err)
		}
		strategytest.MustExec(t, db, "REVOKE SELECT ON subtasks FROM "+app)
		defer strategytest.MustExec(t, db, "GRANT SELECT ON subtasks TO "+app)
		if _, err := s.ListSubtasks(strategytest.TenantCtx(b), 1, 10); !errors.Is(err, strategy.ErrTenantUnavailable) {
			t.Errorf("tenant-1 after its grant was revoked: err = %v, want ErrTenantUnavailable", err)
		}
	})
}

func TestMultiDBSetupReportsEachTenant(t *testing.T) {
	t.Parallel()
	opts := strategytest.Options(t, strategy.MultiDB)
	// tenant-1's database exists with a conflicting table, so its migration
	// fails; the others must still be set up and reported.
	admin := pgtest.Admin(t, "postgres")
	if _, err := admin.Exec(`CREATE DATABASE "` + opts.TenantDatabase(1) + `"`); err != nil {
		t.Fatal(err)
	}
	if _, err := pgtest.Admin(t, opts.TenantDatabase(1)).Exec(`CREATE TABLE subtasks (x int)`); err != nil {
		t.Fatal(err)
	}
	a, err := NewAdmin(opts)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep, err := a.Setup(context.Background(), &out)
	if err == nil || !strings.Contains(err.Error(), opts.TenantDatabase(1)) {
		t.Fatalf("Setup err = %v, want one naming %s", err, opts.TenantDatabase(1))
	}
	if len(rep.Databases) != 5 {
		t.Fatalf("Setup reported %d databases, want the base database (the directory), the template and 3 tenants", len(rep.Databases))
	}
	for _, d := range rep.Databases {
		latest := strategytest.LatestVersion(t, Harness().Migrations)
		if d.Database == opts.Database {
			latest = strategytest.LatestVersion(t, Harness().SharedMigrations)
		}
		failed := d.Err != nil
		if failed != (d.Database == opts.TenantDatabase(1)) {
			t.Errorf("database %s: err = %v; want a failure only for tenant-1", d.Database, d.Err)
		}
		if !failed && d.To != latest {
			t.Errorf("database %s at version %d, want %d", d.Database, d.To, latest)
		}
	}
	// The template is migrated; tenant-0 and tenant-2 are copies of it,
	// already at its version.
	latest := strategytest.LatestVersion(t, Harness().Migrations)
	if !strings.Contains(out.String(), "FAILED") || strings.Count(out.String(), fmt.Sprintf("migrated 0 -> %d", latest)) != 1 ||
		strings.Count(out.String(), fmt.Sprintf("created, up to date at version %d", latest)) != 2 {
		t.Errorf("Setup progress output:\n%s\nwant the template migrated, two tenants created up to date, and one FAILED", out.String())
	}
}

// TestMultiDBOneLockedTenantLeavesTheOthersServed: with one tenant's
// subtasks locked, requests to it take at most its share of the budget;
// another tenant's request is served at once, not after the locks time out.
func TestMultiDBOneLockedTenantLeavesTheOthersServed(t *testing.T) {
	t.Parallel()
	opts, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 1)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 1)
	lock, err := pgtest.Admin(t, opts.TenantDatabase(1)).Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.Exec("LOCK TABLE subtasks IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var stuck atomic.Int32
	for range 6 { // more than the budget of 4
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ListSubtasks(strategytest.TenantCtx(b), 1, 10); err != nil {
				stuck.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let them take their connections
	// Well inside lock_timeout (5s) and the pool's wait (5s): without the
	// share, tenant-0 would wait for one of tenant-1's connections.
	ctx, cancel := context.WithTimeout(strategytest.TenantCtx(a), 2*time.Second)
	defer cancel()
	if _, err := s.ListSubtasks(ctx, 1, 10); err != nil {
		t.Errorf("tenant-0 while tenant-1's subtasks are locked: %v", err)
	}
	lock.Rollback()
	wg.Wait()
	t.Logf("tenant-1's requests that failed while locked: %d of 6", stuck.Load())
}

func TestMultiDBCreateLeavesOutDenormalisedColumns(t *testing.T) {
	t.Parallel()
	_, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-2", 1)
	err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
		var task models.Task
		if err := tx.First(&task).Error; err != nil {
			return err
		}
		return tx.Create(&models.Subtask{TaskID: task.ID, Name: "added"}).Error
	})
	if err != nil {
		t.Errorf("creating a subtask through multidb: %v", err)
	}
}

func TestMultiDBMigrateNamesAMissingTenantDatabase(t *testing.T) {
	t.Parallel()
	opts, admin, _ := strategytest.Deploy(t, Harness())
	if _, err := pgtest.Admin(t, "postgres").Exec(`DROP DATABASE "` + opts.TenantDatabase(2) + `" WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep, err := admin.Migrate(context.Background(), &out, strategy.MigrateOptions{Continue: true})
	if err == nil || !strings.Contains(err.Error(), opts.TenantDatabase(2)) || !strings.Contains(err.Error(), "run `tenancy setup`") {
		t.Errorf("Migrate with tenant-2's database missing: err = %v, want one naming it and saying to run setup", err)
	}
	latest := strategytest.LatestVersion(t, Harness().Migrations)
	// The base database (the directory) first, then the template, then
	// the tenants.
	if len(rep.Databases) != 5 || rep.Databases[0].Database != opts.Database || rep.Databases[1].Database != opts.Database+"_tenant-template" ||
		rep.Databases[0].Err != nil || rep.Databases[2].Err != nil || rep.Databases[3].Err != nil || rep.Databases[2].To != latest {
		t.Errorf("Migrate report = %+v, want the base database, the template, then tenants 0 and 1 up to date at version %d", rep.Databases, latest)
	}
	if strings.Count(out.String(), fmt.Sprintf("up to date at version %d", latest)) != 3 {
		t.Errorf("Migrate output:\n%s\nwant the template and two tenants up to date", out.String())
	}
}

// TestMultiDBMigrateGrantsOnlyWhereNeeded: a no-op migrate leaves a tenant
// database whose privileges match the template's untouched (GRANT rewrites
// the catalog row even when nothing changes, so the row's xmin shows
// whether the grants ran), and still repairs a privilege changed by hand,
// in either direction.
func TestMultiDBMigrateGrantsOnlyWhereNeeded(t *testing.T) {
	t.Parallel()
	opts, admin, _ := strategytest.Deploy(t, Harness())
	app := pg.QuoteIdent(opts.AppUser)
	rowVersion := func(database string) string {
		var xmin string
		if err := pgtest.Admin(t, database).QueryRow(`SELECT xmin::text FROM pg_class WHERE oid = 'public.subtasks'::regclass`).Scan(&xmin); err != nil {
			t.Fatal(err)
		}
		return xmin
	}
	privilege := func(database, priv string) bool {
		var has bool
		if err := pgtest.Admin(t, database).QueryRow(`SELECT has_table_privilege($1, 'public.subtasks', $2)`, opts.AppUser, priv).Scan(&has); err != nil {
			t.Fatal(err)
		}
		return has
	}
	migrate := func() {
		t.Helper()
		if _, err := admin.Migrate(context.Background(), nil, strategy.MigrateOptions{}); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	migrate() // the first run after setup may grant what setup's copies lacked
	before := rowVersion(opts.TenantDatabase(0))
	migrate()
	if after := rowVersion(opts.TenantDatabase(0)); after != before {
		t.Errorf("a no-op migrate granted tenant-0's database again (subtasks' catalog row %s -> %s); want it skipped, its privileges being the template's", before, after)
	}
	tests := []struct {
		name, drift, priv string
		want              bool
	}{
		{"a grant revoked", "REVOKE SELECT ON subtasks FROM " + app, "SELECT", true},
		{"a grant added", "GRANT TRUNCATE ON subtasks TO " + app, "TRUNCATE", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strategytest.MustExec(t, pgtest.Admin(t, opts.TenantDatabase(1)), tt.drift)
			migrate()
			if got := privilege(opts.TenantDatabase(1), tt.priv); got != tt.want {
				t.Errorf("after %s and a migrate, app role has %s on subtasks = %v, want %v", tt.name, tt.priv, got, tt.want)
			}
		})
	}
}

func TestMultiDBJoinsSkipDenormalisedColumns(t *testing.T) {
	t.Parallel()
	_, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 2)
	var subs []models.Subtask
	err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
		return tx.Joins("Task.Project").Find(&subs).Error
	})
	if err != nil || len(subs) != 2 || subs[0].Task == nil || subs[0].Task.Name != "tenant-0 task" || subs[0].Task.Project == nil || subs[0].Task.Project.Name != "tenant-0 project" {
		t.Errorf("multidb Joins(Task.Project) = %+v, err %v; want 2 subtasks with their task and project", subs, err)
	}
}

func TestMultiDBSizesItsOpenConnections(t *testing.T) {
	for _, tc := range []struct {
		tenants, budget, allowed, servers, want int
	}{
		{3, 4, 297, 0, 12},     // as many as the pools can use
		{100, 4, 297, 0, 222},  // three quarters of what the server allows
		{100, 4, 97, 0, 72},    // the default max_connections of 100
		{1000, 4, 5, 0, 4},     // never under the working budget
		{100, 16, 297, 0, 222}, // a bigger budget, the same share
		{100, 4, 297, 1, 222},  // MULTIDB_SERVERS=1 is the default
		{100, 4, 297, 2, 111},  // two servers share the three quarters
		{1000, 4, 297, 3, 74},  // three servers
		{1000, 4, 297, 100, 4}, // never under the working budget
	} {
		o := strategy.Options{TenantCount: tc.tenants, MaxConns: tc.budget, Servers: tc.servers}
		if got := TenantConnsFor(o, tc.allowed); got != tc.want {
			t.Errorf("%d tenants, budget %d, %d allowed, %d servers: %d connections, want %d", tc.tenants, tc.budget, tc.allowed, tc.servers, got, tc.want)
		}
	}

	t.Run("open", func(t *testing.T) {
		t.Parallel()
		opts, _, _ := strategytest.Deploy(t, Harness())
		for _, tc := range []struct {
			set, want int
		}{{0, 3 * 4}, {7, 7}} { // strategytest.Options: 3 tenants, budget 4
			o := opts
			o.TenantConns = tc.set
			s, err := Open(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.pools.maxOpen; got != tc.want {
				t.Errorf("MULTIDB_OPEN_CONNS %d: the server keeps up to %d connections, want %d", tc.set, got, tc.want)
			}
			s.Close()
		}
		// Tenants created since setup count: the directory lists five
		// where MULTIDB_COUNT says three.
		admin := strategytest.OpenAdmin(t, Harness(), opts)
		for _, slug := range []string{"more-1", "more-2"} {
			if _, err := admin.AddTenant(context.Background(), strategy.TenantSpec{Slug: slug, Name: slug}); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := s.pools.maxOpen; got != 5*4 {
			t.Errorf("with 5 tenants in the directory and MULTIDB_COUNT 3, the server keeps up to %d connections, want %d", got, 5*4)
		}
	})
}
