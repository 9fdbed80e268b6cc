package strategy_test

// Faults under load: PostgreSQL restarted while the server is busy, and one
// multidb tenant's database dropped or closed to connections while the
// others are served.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"tenancy/internal/loadcheck"
	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// Messages the user sees (handlers/errors.go); the tests check the user is
// told something clear, not how it is worded to the letter.
const (
	unreachableMessage       = "The database is not reachable right now."
	tenantUnreachableMessage = "This tenant's database is not available right now"
)

// background runs a load check until stop is called, which returns what it
// saw.
func background(t *testing.T, o loadcheck.Options) (stop func() loadcheck.Result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan loadcheck.Result, 1)
	go func() {
		res, err := loadcheck.Run(ctx, o)
		if err != nil {
			t.Errorf("load check: %v", err)
		}
		done <- res
	}()
	return func() loadcheck.Result {
		cancel()
		return <-done
	}
}

// TestPostgresRestartUnderLoad stops PostgreSQL (fast mode, as a restart
// does) while requests are running, keeps the load on through the outage,
// starts it again, and checks: during the outage every failure is a 503
// with the "not reachable" message (no 500, no dropped connection, no
// leaked row); afterwards every request succeeds again with the same
// server, and no connection of the app pool carries a tenant. It uses a
// throwaway cluster of its own: the shared one serves other tests.
func TestPostgresRestartUnderLoad(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			env := cluster.Env()
			env["STRATEGY"] = name
			env["PGDATABASE"] = "restart_" + name
			env["SECRET_KEY"] = "test-secret-key-0123456789"
			d := newDeployment(t, env)
			opts := d.opts
			opts.MaxConns = 8
			s, srv := serve(t, strategy.Open, opts, nil)
			load := loadcheck.Options{URL: srv.URL, BaseDomain: "localhost", Tenants: d.slugs, Concurrency: 4, Expect: d.expect}

			stop := background(t, load)
			time.Sleep(500 * time.Millisecond)
			cluster.Stop(t)
			time.Sleep(time.Second) // under load, with PostgreSQL down
			healthStatus, _ := getJSON(t, srv, "127.0.0.1", "/healthz")
			pageStatus, pageBody := getJSON(t, srv, "tenant-0.localhost", "/subtasks/")
			cluster.Start(t)
			recovered := waitForOK(t, srv, "tenant-1.localhost", "/subtasks/", 30*time.Second)
			time.Sleep(500 * time.Millisecond) // and some load after
			during := stop()
			t.Logf("%s, load through the restart (recovered %s after start):\n%s", name, recovered.Round(time.Millisecond), report(during))

			if healthStatus != http.StatusServiceUnavailable {
				t.Errorf("GET /healthz during the outage = %d, want 503", healthStatus)
			}
			if pageStatus != http.StatusServiceUnavailable || !strings.Contains(pageBody, unreachableMessage) {
				t.Errorf("GET tenant-0 /subtasks/ during the outage = %d %s, want 503 saying %q", pageStatus, pageBody, unreachableMessage)
			}
			if during.OK == 0 || during.Failed == 0 {
				t.Errorf("load through the restart: %d OK, %d failed; want both (the outage was not seen under load)", during.OK, during.Failed)
			}
			for a, n := range during.Answers {
				if a.Status != http.StatusServiceUnavailable || !strings.Contains(a.Message, unreachableMessage) {
					t.Errorf("%d requests during the restart got %d %q, want only 503 saying %q", n, a.Status, a.Message, unreachableMessage)
				}
			}
			if during.LeakedRows != 0 || during.Mismatches != 0 {
				t.Errorf("load through the restart: %d leaked rows, %d mismatched pages, want none", during.LeakedRows, during.Mismatches)
			}

			load.Requests = 2000
			after, err := loadcheck.Run(context.Background(), load)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s, after the restart:\n%s", name, report(after))
			if after.OK != after.Requests || after.LeakedRows != 0 || after.Mismatches != 0 {
				t.Errorf("after the restart: %d of %d OK, %d leaked rows, %d mismatches; want all OK, none", after.OK, after.Requests, after.LeakedRows, after.Mismatches)
			}
			if name == strategy.SingleSchema {
				checkNoTenantLeftOnConnections(t, s, opts.MaxConns)
			}
		})
	}
}

// waitForOK polls until a request answers 200 and returns how long that
// took.
func waitForOK(t *testing.T, srv *httptest.Server, host, path string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if status, _ := getJSON(t, srv, host, path); status == http.StatusOK {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s did not answer 200 within %s of PostgreSQL starting again", host, path, within)
	return 0
}

// TestMultiDBOneTenantDatabaseGone breaks one tenant's database while all
// tenants are under load: that tenant gets 503 with a message about its
// database, and every other tenant keeps getting every page.
//
// 503 rather than 404 for a dropped database: the tenant is still part of
// the deployment (MULTIDB_COUNT names it); what is missing is its storage,
// which is the server's fault and may be transient (a restore drops and
// recreates it). 404 would tell clients and caches the tenant does not
// exist, and would look like the answer to a mistyped address.
func TestMultiDBOneTenantDatabaseGone(t *testing.T) {
	tests := []struct {
		name    string
		breakDB func(database string) []string // statements run as the admin
	}{
		{"dropped", func(db string) []string {
			return []string{fmt.Sprintf(`DROP DATABASE %q WITH (FORCE)`, db)}
		}},
		{"refusing connections", func(db string) []string {
			return []string{
				fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, db),
				fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'`, db),
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeployment(t, pgtest.Env(t, strategy.MultiDB, nil))
			_, srv := serve(t, strategy.Open, d.opts, nil)
			const broken = "tenant-1"
			load := loadcheck.Options{URL: srv.URL, BaseDomain: "localhost", Tenants: d.slugs, Concurrency: 4, Expect: d.expect}

			stop := background(t, load)
			time.Sleep(500 * time.Millisecond)
			admin := pgtest.Admin(t, "postgres")
			for _, stmt := range tt.breakDB(d.opts.TenantDatabase(1)) {
				if _, err := admin.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			time.Sleep(1500 * time.Millisecond)
			during := stop()
			t.Logf("%s: load while %s's database was %s:\n%s", tt.name, broken, tt.name, report(during))

			for _, slug := range d.slugs {
				tr := during.PerTenant[slug]
				switch {
				case slug == broken && tr.Failed == 0:
					t.Errorf("%s: no request failed once its database was %s", slug, tt.name)
				case slug != broken && (tr.Failed != 0 || tr.OK == 0):
					t.Errorf("%s: %d OK, %d failed while %s's database was %s; want all OK", slug, tr.OK, tr.Failed, broken, tt.name)
				}
			}
			for a, n := range during.Answers {
				if a.Status != http.StatusServiceUnavailable {
					t.Errorf("%d requests got %d %q, want 503", n, a.Status, a.Message)
				}
			}
			if during.LeakedRows != 0 || during.Mismatches != 0 {
				t.Errorf("%d leaked rows, %d mismatched pages, want none", during.LeakedRows, during.Mismatches)
			}

			// Once the pool's old connections are gone, every answer for the
			// tenant names its database.
			status, body := getJSON(t, srv, broken+".localhost", "/subtasks/")
			if status != http.StatusServiceUnavailable || !strings.Contains(body, tenantUnreachableMessage) {
				t.Errorf("GET %s /subtasks/ = %d %s, want 503 saying %q", broken, status, body, tenantUnreachableMessage)
			}
			t.Logf("%s: GET %s /subtasks/ = %d %s", tt.name, broken, status, body)
		})
	}
}
