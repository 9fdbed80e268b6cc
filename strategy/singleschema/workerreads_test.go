package singleschema_test

import (
	"context"
	"fmt"
	"testing"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/strategytest"
)

// testReadsOnTheTenantsWorker: on Citus a tenant's page is read on the
// worker that holds its shards (the server's own connections are there,
// not only Citus's from the coordinator), every tenant still gets exactly
// its own rows, and a worker that drops the server's connections costs no
// page: the read goes to the coordinator. With CoordinatorReads (off by
// CITUS_WORKER_READS) no worker is connected to.
func testReadsOnTheTenantsWorker(t *testing.T, h strategytest.Harness) {
	ctx := context.Background()
	opts, admin, s := strategytest.Deploy(t, h)
	var tenants []models.Account
	for i := range 6 {
		tenants = append(tenants, strategytest.AddTenant(t, admin, s, fmt.Sprintf("tenant-%d", i), 3+i))
	}
	workers := map[string][]models.Account{} // a worker's host:port -> its tenants
	for _, a := range tenants {
		w := shardWorker(t, opts, a)
		workers[w] = append(workers[w], a)
	}
	if len(workers) < 2 {
		t.Fatalf("the 6 tenants' shards are on %d worker(s), want both: the test would not tell the workers apart", len(workers))
	}

	readAll := func(name string, s strategy.Strategy) {
		t.Helper()
		for i, a := range tenants {
			page, err := s.ListSubtasks(strategytest.TenantCtx(a), 1, 10)
			if err != nil {
				t.Fatalf("%s: ListSubtasks(%s): %v", name, a.Slug, err)
			}
			if page.Total != int64(3+i) || len(page.Rows) != 3+i {
				t.Errorf("%s: %s's page = %d rows of %d, want %d of %d", name, a.Slug, len(page.Rows), page.Total, 3+i, 3+i)
			}
			for _, r := range page.Rows {
				if r.AccountSlug != a.Slug {
					t.Errorf("%s: %s's page has a row of %s", name, a.Slug, r.AccountSlug)
				}
			}
		}
	}
	// The server's own sessions on a worker (Citus's from the coordinator
	// are named citus_internal).
	serverSessions := func(worker string) int {
		t.Helper()
		var n int
		err := openOnNode(t, worker, opts.AdminUser, opts.Database).QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND usename = $1 AND application_name = 'tenancy'`, opts.AppUser).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	readAll("worker reads", s)
	for w, ts := range workers {
		if n := serverSessions(w); n == 0 {
			t.Errorf("no connection of the server's on the worker of %s: their pages were not read there", ts[0].Slug)
		}
	}
	if got, ok := workerPool(t, s); !ok || got.Opened == 0 {
		t.Errorf("the workers pool opened no connection (reported: %v): %+v", ok, got)
	}

	// A worker that drops the server's connections: every page is still
	// served (read through the coordinator), and the worker is left alone
	// for a while.
	for w := range workers {
		if _, err := openOnNode(t, w, opts.AdminUser, opts.Database).ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND usename = $1 AND application_name = 'tenancy'`, opts.AppUser); err != nil {
			t.Fatal(err)
		}
	}
	readAll("after the workers dropped the server's connections", s)

	coordinatorOnly := opts
	coordinatorOnly.CoordinatorReads = true
	other, err := h.Open(ctx, coordinatorOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	readAll("coordinator reads", other)
	if got, _ := workerPool(t, other); got.Opened != 0 {
		t.Errorf("with CoordinatorReads, the workers pool opened %d connections, want none", got.Opened)
	}
}

// workerPool is what s reports of its worker pools, if it has any.
func workerPool(t *testing.T, s strategy.Strategy) (strategy.PoolStats, bool) {
	t.Helper()
	r, ok := s.(strategy.PoolStatsReporter)
	if !ok {
		t.Fatalf("%T reports no pools", s)
	}
	for _, p := range r.PoolStats() {
		if p.Pool == "workers" {
			return p, true
		}
	}
	return strategy.PoolStats{}, false
}
