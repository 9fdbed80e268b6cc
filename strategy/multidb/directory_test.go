package multidb

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/strategytest"
)

// writeOne gives tenant a a project, a task and a subtask, as the server.
func writeOne(t *testing.T, s strategy.Strategy, a models.Account) {
	t.Helper()
	err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
		p := models.Project{Name: a.Slug + " project"}
		if err := tx.Create(&p).Error; err != nil {
			return err
		}
		task := models.Task{ProjectID: p.ID, Name: a.Slug + " task"}
		if err := tx.Create(&task).Error; err != nil {
			return err
		}
		return tx.Create(&models.Subtask{TaskID: task.ID, Name: a.Slug + " subtask"}).Error
	})
	if err != nil {
		t.Fatalf("write %s's rows: %v", a.Slug, err)
	}
}

// A running server serves a tenant added after it started, and answers
// "not found" for one deleted after it started, at once (not after its
// caches expire), its pool closed.
func TestMultiDBServerFollowsTheDirectory(t *testing.T) {
	t.Parallel()
	_, admin, st := strategytest.Deploy(t, Harness())
	s := st.(*Server)
	ctx := context.Background()
	other := strategytest.AddTenant(t, admin, s, "tenant-0", 2)

	if _, err := s.TenantBySlug(ctx, "late"); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Fatalf("TenantBySlug(late) before it exists: %v, want ErrTenantNotFound", err)
	}
	if _, err := admin.AddTenant(ctx, strategy.TenantSpec{Slug: "late", Name: "Late Ltd"}); err != nil {
		t.Fatal(err)
	}
	late, err := s.TenantBySlug(ctx, "late")
	if err != nil || late.Name != "Late Ltd" {
		t.Fatalf("TenantBySlug(late) after AddTenant = %+v, %v; want it served without a restart", late, err)
	}
	writeOne(t, s, late)
	if page, err := s.ListSubtasks(strategytest.TenantCtx(late), 1, 10); err != nil || page.Total != 1 {
		t.Fatalf("late's page: total %d, err %v; want 1", page.Total, err)
	}
	pools := s.pools.live()

	if _, err := admin.DeleteTenant(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	// The server still remembers late's account and directory row; the
	// next request finds its database gone, asks the directory, and says
	// not found.
	if page, err := s.ListSubtasks(strategytest.TenantCtx(late), 1, 10); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("late's page after its delete: %+v, %v; want ErrTenantNotFound (a 404), not unavailable", page, err)
	}
	if _, err := s.TenantBySlug(ctx, "late"); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("TenantBySlug(late) after its delete: %v, want ErrTenantNotFound", err)
	}
	if got := s.pools.live(); got != pools-1 {
		t.Errorf("open tenant pools after late's delete = %d, want %d (its pool closed)", got, pools-1)
	}
	if page, err := s.ListSubtasks(strategytest.TenantCtx(other), 1, 10); err != nil || page.Total != 2 {
		t.Errorf("tenant-0 after late's delete: total %d, err %v; want 2", page.Total, err)
	}
	rep, err := s.ReportOpenSubtasks(models.NewContextForAllTenants(ctx), strategy.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Rows {
		if r.Slug == "late" {
			t.Errorf("the cross-tenant report lists the deleted tenant: %+v", rep.Rows)
		}
	}
}

// A tenant whose database is on another PostgreSQL server (a throwaway
// cluster) is created there, served, checked and deleted there, and
// nothing of it is made on the deployment's own server.
func TestMultiDBTenantOnAnotherServer(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	opts, admin, s := strategytest.Deploy(t, Harness())
	ctx := context.Background()
	strategytest.AddTenant(t, admin, s, "tenant-0", 2)

	e, err := admin.AddTenant(ctx, strategy.TenantSpec{Slug: "far", Name: "Far Away", Host: "127.0.0.1", Port: cluster.Port})
	if err != nil {
		t.Fatalf("AddTenant on the second server: %v", err)
	}
	if e.Port != cluster.Port || !strings.Contains(e.Location, e.Database) {
		t.Errorf("AddTenant = %+v, want it on port %d", e, cluster.Port)
	}
	if n := strategytest.Int64s(t, pgtest.Admin(t, "postgres"), `SELECT count(*) FROM pg_database WHERE datname = $1`, e.Database); n[0] != 0 {
		t.Errorf("database %s was made on the deployment's own server too", e.Database)
	}
	remote := remoteAdmin(t, cluster.Port, "postgres")
	if n := strategytest.Int64s(t, remote, `SELECT count(*) FROM pg_database WHERE datname = $1`, e.Database); n[0] != 1 {
		t.Fatalf("database %s is not on the second server", e.Database)
	}

	acct, err := s.TenantBySlug(ctx, "far")
	if err != nil || acct.Name != "Far Away" {
		t.Fatalf("TenantBySlug(far) = %+v, %v", acct, err)
	}
	writeOne(t, s, acct)
	if page, err := s.ListSubtasks(strategytest.TenantCtx(acct), 1, 10); err != nil || page.Total != 1 || page.Rows[0].Name != "far subtask" {
		t.Fatalf("far's page from the second server: %+v, %v; want its one subtask", page, err)
	}
	if n := strategytest.Int64s(t, remoteAdmin(t, cluster.Port, e.Database), `SELECT count(*) FROM subtasks`); n[0] != 1 {
		t.Errorf("subtasks in %s on the second server = %d, want 1", e.Database, n[0])
	}
	rep, err := audit.CheckMultiDB(ctx, opts)
	if err != nil || len(rep.Findings) != 0 {
		t.Errorf("check with a tenant on the second server: %v, findings %v; want none", err, rep.Findings)
	}
	if _, err := admin.Migrate(ctx, nil, strategy.MigrateOptions{}); err != nil {
		t.Errorf("Migrate with a tenant on the second server: %v", err)
	}

	if _, err := admin.DeleteTenant(ctx, "far"); err != nil {
		t.Fatal(err)
	}
	if n := strategytest.Int64s(t, remote, `SELECT count(*) FROM pg_database WHERE datname = $1`, e.Database); n[0] != 0 {
		t.Errorf("database %s is still on the second server after the delete", e.Database)
	}
	if page, err := s.ListSubtasks(strategytest.TenantCtx(acct), 1, 10); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("far's page after its delete: %+v, %v; want ErrTenantNotFound", page, err)
	}
}

// remoteAdmin opens an admin pool on database of the throwaway cluster on
// port, closed when the test ends.
func remoteAdmin(t *testing.T, port int, database string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:"+strconv.Itoa(port)+"/"+database+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMultiDBTenantLookupNeedsOnlyTheDirectory: once a tenant database was
// seen to hold the account its directory row names, looking the tenant up
// reads the directory alone: it works while the tenant database refuses
// connections (whose page then answers unavailable). A slug deleted and
// made again names a new account, and the lookup returns that one, not
// the one remembered for the same database name.
func TestMultiDBTenantLookupNeedsOnlyTheDirectory(t *testing.T) {
	t.Parallel()
	opts, admin, st := strategytest.Deploy(t, Harness())
	s := st.(*Server)
	ctx := context.Background()
	if _, err := admin.AddTenant(ctx, strategy.TenantSpec{Slug: "again", Name: "First"}); err != nil {
		t.Fatal(err)
	}
	first, err := s.TenantBySlug(ctx, "again")
	if err != nil {
		t.Fatal(err)
	}
	database := opts.Database + "_again"
	strategytest.MustExec(t, pgtest.Admin(t, "postgres"),
		`ALTER DATABASE "`+database+`" ALLOW_CONNECTIONS false`,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+database+`'`)
	s.entries.Forget("again") // as when its directory row is due to be read again
	if acct, err := s.TenantBySlug(ctx, "again"); err != nil || acct != first {
		t.Errorf("TenantBySlug(again) with its database refusing connections = %+v, %v; want %+v from the directory and what was verified", acct, err, first)
	}
	if _, err := s.ListSubtasks(strategytest.TenantCtx(first), 1, 10); !errors.Is(err, strategy.ErrUnavailable) {
		t.Errorf("again's page with its database refusing connections: %v, want unavailable (503)", err)
	}
	strategytest.MustExec(t, pgtest.Admin(t, "postgres"), `ALTER DATABASE "`+database+`" ALLOW_CONNECTIONS true`)

	if _, err := admin.DeleteTenant(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	second, err := admin.AddTenant(ctx, strategy.TenantSpec{Slug: "again", Name: "Second"})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID {
		t.Fatalf("the tenant made again has id %d, as before; the test needs a new one", second.ID)
	}
	s.entries.Forget("again")
	if acct, err := s.TenantBySlug(ctx, "again"); err != nil || acct.ID != second.ID || acct.Name != "Second" {
		t.Errorf("TenantBySlug(again) after it was deleted and made again = %+v, %v; want id %d named Second", acct, err, second.ID)
	}
}
