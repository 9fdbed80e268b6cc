package strategy

import (
	"context"
	"database/sql"
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
)

func TestMultiDBKeepsTenantsInTheirDatabases(t *testing.T) {
	t.Parallel()
	opts, admin, s := deploy(t, MultiDB)
	a := addTenant(t, admin, s, "tenant-0", 3)
	b := addTenant(t, admin, s, "tenant-1", 5)
	for _, tc := range []struct {
		tenant models.Account
		want   int
	}{{a, 3}, {b, 5}} {
		page, err := s.ListSubtasks(tenantCtx(tc.tenant), 1, 10)
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
		if _, err := s.TenantBySlug(context.Background(), slug); !errors.Is(err, ErrTenantNotFound) {
			t.Errorf("TenantBySlug(%q) err = %v, want ErrTenantNotFound", slug, err)
		}
	}
	if _, err := s.ListSubtasks(models.NewContextForAllTenants(context.Background()), 1, 10); !errors.Is(err, ErrNotSupported) {
		t.Errorf("multidb all-tenants list: err = %v, want ErrNotSupported", err)
	}
}

func TestMultiDBDroppedTenantIsUnavailable(t *testing.T) {
	t.Parallel()
	opts, admin, s := deploy(t, MultiDB)
	a := addTenant(t, admin, s, "tenant-0", 1)
	b := addTenant(t, admin, s, "tenant-1", 1)
	if _, err := pgtest.Admin(t, "postgres").Exec(`DROP DATABASE "` + opts.TenantDatabase(0) + `" WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListSubtasks(tenantCtx(a), 1, 10); !errors.Is(err, ErrUnavailable) {
		t.Errorf("list of a tenant whose database was dropped: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.ListSubtasks(tenantCtx(b), 1, 10); err != nil {
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
	opts, admin, s := deploy(t, MultiDB)
	a := addTenant(t, admin, s, "tenant-0", 1)
	b := addTenant(t, admin, s, "tenant-1", 1)
	db := pgtest.Admin(t, opts.TenantDatabase(1))
	app, database := quoteIdent(opts.AppUser), quoteIdent(opts.TenantDatabase(1))
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
			mustExec(t, db, tt.breakIt)
			defer mustExec(t, db, tt.undo)
			fresh, err := Open(context.Background(), opts)
			if err != nil {
				t.Fatalf("Open: %v (a tenant database's fault must not stop the server)", err)
			}
			defer fresh.Close()
			if _, err := fresh.ListSubtasks(tenantCtx(b), 1, 10); !errors.Is(err, ErrTenantUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("tenant-1 with %s: err = %v, want ErrTenantUnavailable mentioning %q", tt.name, err, tt.want)
			}
			if _, err := fresh.ListSubtasks(tenantCtx(a), 1, 10); err != nil {
				t.Errorf("tenant-0 while tenant-1's database has %s: %v", tt.name, err)
			}
		})
	}
	t.Run("a grant revoked while serving", func(t *testing.T) {
		if _, err := s.ListSubtasks(tenantCtx(b), 1, 10); err != nil {
			t.Fatalf("tenant-1 before: %v", err)
		}
		mustExec(t, db, "REVOKE SELECT ON subtasks FROM "+app)
		defer mustExec(t, db, "GRANT SELECT ON subtasks TO "+app)
		if _, err := s.ListSubtasks(tenantCtx(b), 1, 10); !errors.Is(err, ErrTenantUnavailable) {
			t.Errorf("tenant-1 after its grant was revoked: err = %v, want ErrTenantUnavailable", err)
		}
	})
}

func TestMultiDBSetupReportsEachTenant(t *testing.T) {
	t.Parallel()
	opts := testOptions(t, MultiDB)
	// tenant-1's database exists with a conflicting table, so its migration
	// fails; the others must still be set up and reported.
	admin := pgtest.Admin(t, "postgres")
	if _, err := admin.Exec(`CREATE DATABASE "` + opts.TenantDatabase(1) + `"`); err != nil {
		t.Fatal(err)
	}
	if _, err := pgtest.Admin(t, opts.TenantDatabase(1)).Exec(`CREATE TABLE subtasks (x int)`); err != nil {
		t.Fatal(err)
	}
	a, err := OpenAdmin(opts)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep, err := a.Setup(context.Background(), &out)
	if err == nil || !strings.Contains(err.Error(), opts.TenantDatabase(1)) {
		t.Fatalf("Setup err = %v, want one naming %s", err, opts.TenantDatabase(1))
	}
	if len(rep.Databases) != 4 {
		t.Fatalf("Setup reported %d databases, want the template and 3 tenants", len(rep.Databases))
	}
	latest := latestVersion(t, MultiDB)
	for _, d := range rep.Databases {
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
	if !strings.Contains(out.String(), "FAILED") || strings.Count(out.String(), fmt.Sprintf("migrated 0 -> %d", latest)) != 1 ||
		strings.Count(out.String(), fmt.Sprintf("created, up to date at version %d", latest)) != 2 {
		t.Errorf("Setup progress output:\n%s\nwant the template migrated, two tenants created up to date, and one FAILED", out.String())
	}
}

// fakePools is a registry over pools that never connect, counting opens.
func fakePools(budget int, maxWait time.Duration) (*tenantPools, func(string) int) {
	var mu sync.Mutex
	opened := map[string]int{}
	p := newTenantPools(budget, budget, maxWait, func(database string) (*sql.DB, error) {
		mu.Lock()
		opened[database]++
		mu.Unlock()
		return sql.Open("pgx", "postgres://nobody@127.0.0.1:1/"+database)
	})
	return p, func(db string) int { mu.Lock(); defer mu.Unlock(); return opened[db] }
}

// TestTenantPoolsKeepATenantToItsShare: one tenant whose requests hang
// gets at most half the budget, so the others are still served.
func TestTenantPoolsKeepATenantToItsShare(t *testing.T) {
	t.Parallel()
	pools, _ := fakePools(4, 50*time.Millisecond)
	defer pools.close()
	ctx := context.Background()
	var held []func()
	for range 2 {
		_, release, err := pools.acquire(ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	if _, _, err := pools.acquire(ctx, "slow"); !errors.Is(err, ErrTenantUnavailable) {
		t.Errorf("a third connection for one tenant of a budget of 4: err = %v, want ErrTenantUnavailable", err)
	}
	for _, other := range []string{"a", "b"} {
		_, release, err := pools.acquire(ctx, other)
		if err != nil {
			t.Fatalf("tenant %s while another holds its share: %v", other, err)
		}
		defer release()
	}
	// The budget is full now; the slow tenant's share comes back when it
	// releases.
	held[0]()
	_, release, err := pools.acquire(ctx, "slow")
	if err != nil {
		t.Fatalf("the slow tenant after releasing one: %v", err)
	}
	release()
	held[1]()
	pools.mu.Lock()
	defer pools.mu.Unlock()
	if len(pools.shares) != 2 {
		t.Errorf("shares kept = %d, want 2 (a and b, still held); a tenant without work keeps none", len(pools.shares))
	}
}

// TestMultiDBOneLockedTenantLeavesTheOthersServed: with one tenant's
// subtasks locked, requests to it take at most its share of the budget;
// another tenant's request is served at once, not after the locks time out.
func TestMultiDBOneLockedTenantLeavesTheOthersServed(t *testing.T) {
	t.Parallel()
	opts, admin, s := deploy(t, MultiDB)
	a := addTenant(t, admin, s, "tenant-0", 1)
	b := addTenant(t, admin, s, "tenant-1", 1)
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
			if _, err := s.ListSubtasks(tenantCtx(b), 1, 10); err != nil {
				stuck.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let them take their connections
	// Well inside lock_timeout (5s) and the pool's wait (5s): without the
	// share, tenant-0 would wait for one of tenant-1's connections.
	ctx, cancel := context.WithTimeout(tenantCtx(a), 2*time.Second)
	defer cancel()
	if _, err := s.ListSubtasks(ctx, 1, 10); err != nil {
		t.Errorf("tenant-0 while tenant-1's subtasks are locked: %v", err)
	}
	lock.Rollback()
	wg.Wait()
	t.Logf("tenant-1's requests that failed while locked: %d of 6", stuck.Load())
}

func TestTenantPoolsStayWithinBudget(t *testing.T) {
	t.Parallel()
	pools, opened := fakePools(2, 50*time.Millisecond)
	defer pools.close()
	ctx := context.Background()
	_, releaseA, err := pools.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	_, releaseB, err := pools.acquire(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	// The budget is in use: a third acquisition waits maxWait, then gives up.
	if _, _, err := pools.acquire(ctx, "c"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("acquire beyond the budget: err = %v, want ErrUnavailable", err)
	}
	releaseB()
	releaseB() // idempotent

	// a is still in use and the least recently used: opening c must evict
	// b (idle), never a.
	_, releaseC, err := pools.acquire(ctx, "c")
	if err != nil {
		t.Fatalf("acquire after a release: %v", err)
	}
	if got := pools.live(); got != 2 {
		t.Errorf("live pools = %d, want 2", got)
	}
	releaseA()
	releaseC()
	for _, db := range []string{"a", "b"} {
		_, release, err := pools.acquire(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	if opened("a") != 1 || opened("b") != 2 || opened("c") != 1 {
		t.Errorf("pools opened a, b, c = %d, %d, %d times; want 1, 2, 1 (b evicted as the least recently used idle pool, a kept while in use)", opened("a"), opened("b"), opened("c"))
	}
}

func TestTenantPoolsUnderConcurrency(t *testing.T) {
	t.Parallel()
	const budget = 3
	pools, _ := fakePools(budget, time.Second)
	defer pools.close()
	var inUse, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				db, release, err := pools.acquire(context.Background(), fmt.Sprintf("db%d", (g*7+i)%10))
				if err != nil {
					t.Error(err)
					return
				}
				n := inUse.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				if db == nil {
					t.Error("acquire returned no pool")
				}
				inUse.Add(-1)
				release()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > budget || pools.live() > budget {
		t.Errorf("peak in use %d, live pools %d; want both at most %d", peak.Load(), pools.live(), budget)
	}
}

func TestMultiDBCreateLeavesOutDenormalisedColumns(t *testing.T) {
	t.Parallel()
	_, admin, s := deploy(t, MultiDB)
	a := addTenant(t, admin, s, "tenant-2", 1)
	err := s.Tx(tenantCtx(a), func(tx *gorm.DB) error {
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
	opts, admin, _ := deploy(t, MultiDB)
	if _, err := pgtest.Admin(t, "postgres").Exec(`DROP DATABASE "` + opts.TenantDatabase(2) + `" WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep, err := admin.Migrate(context.Background(), &out)
	if err == nil || !strings.Contains(err.Error(), opts.TenantDatabase(2)) || !strings.Contains(err.Error(), "run `tenancy setup`") {
		t.Errorf("Migrate with tenant-2's database missing: err = %v, want one naming it and saying to run setup", err)
	}
	latest := latestVersion(t, MultiDB)
	if len(rep.Databases) != 3 || rep.Databases[0].Err != nil || rep.Databases[1].Err != nil || rep.Databases[0].To != latest {
		t.Errorf("Migrate report = %+v, want tenants 0 and 1 up to date at version %d", rep.Databases, latest)
	}
	if strings.Count(out.String(), fmt.Sprintf("up to date at version %d", latest)) != 2 {
		t.Errorf("Migrate output:\n%s\nwant two tenants up to date", out.String())
	}
}

func TestMultiDBJoinsSkipDenormalisedColumns(t *testing.T) {
	t.Parallel()
	_, admin, s := deploy(t, MultiDB)
	a := addTenant(t, admin, s, "tenant-0", 2)
	var subs []models.Subtask
	err := s.Tx(tenantCtx(a), func(tx *gorm.DB) error {
		return tx.Joins("Task.Project").Find(&subs).Error
	})
	if err != nil || len(subs) != 2 || subs[0].Task == nil || subs[0].Task.Name != "tenant-0 task" || subs[0].Task.Project == nil || subs[0].Task.Project.Name != "tenant-0 project" {
		t.Errorf("multidb Joins(Task.Project) = %+v, err %v; want 2 subtasks with their task and project", subs, err)
	}
}

func TestMultiDBSizesItsOpenConnections(t *testing.T) {
	for _, tc := range []struct {
		tenants, budget, allowed, want int
	}{
		{3, 4, 297, 12},     // as many as the pools can use
		{100, 4, 297, 222},  // three quarters of what the server allows
		{100, 4, 97, 72},    // the default max_connections of 100
		{1000, 4, 5, 4},     // never under the working budget
		{100, 16, 297, 222}, // a bigger budget, the same share
	} {
		o := Options{TenantCount: tc.tenants, MaxConns: tc.budget}
		if got := o.tenantConnsFor(tc.allowed); got != tc.want {
			t.Errorf("%d tenants, budget %d, %d allowed: %d connections, want %d", tc.tenants, tc.budget, tc.allowed, got, tc.want)
		}
	}

	t.Run("open", func(t *testing.T) {
		t.Parallel()
		opts, _, _ := deploy(t, MultiDB)
		for _, tc := range []struct {
			set, want int
		}{{0, 3 * 4}, {7, 7}} { // testOptions: 3 tenants, budget 4
			o := opts
			o.TenantConns = tc.set
			s, err := Open(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.(*multiDB).pools.maxOpen; got != tc.want {
				t.Errorf("MULTIDB_OPEN_CONNS %d: the server keeps up to %d connections, want %d", tc.set, got, tc.want)
			}
			s.Close()
		}
	})
}
