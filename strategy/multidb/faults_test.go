package multidb_test

// Faults under load: one multidb tenant's database dropped or closed to
// connections while the others are served.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"tenancy/internal/loadcheck"
	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/multidb"
	"tenancy/strategy/strategytest"
)

// The message the user sees (handlers/errors.go); the test checks the user
// is told something clear, not how it is worded to the letter.
const tenantUnreachableMessage = "This tenant's data is not available right now"

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
			d := strategytest.NewLoadDeployment(t, multidb.Harness(), pgtest.Env(t, strategy.MultiDB, nil))
			_, srv := strategytest.Serve(t, multidb.Harness().Open, d.Opts, nil)
			const broken = "tenant-1"
			load := loadcheck.Options{URL: srv.URL, BaseDomain: "localhost", Tenants: d.Slugs, Concurrency: 4, Expect: d.Expect}

			stop := strategytest.Background(t, load)
			time.Sleep(500 * time.Millisecond)
			admin := pgtest.Admin(t, "postgres")
			for _, stmt := range tt.breakDB(d.Opts.TenantDatabase(1)) {
				if _, err := admin.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			time.Sleep(1500 * time.Millisecond)
			during := stop()
			t.Logf("%s: load while %s's database was %s:\n%s", tt.name, broken, tt.name, strategytest.Report(during))

			for _, slug := range d.Slugs {
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
			// tenant says its data is unavailable.
			status, body := strategytest.GetJSON(t, srv, broken+".localhost", "/subtasks/")
			if status != http.StatusServiceUnavailable || !strings.Contains(body, tenantUnreachableMessage) {
				t.Errorf("GET %s /subtasks/ = %d %s, want 503 saying %q", broken, status, body, tenantUnreachableMessage)
			}
			t.Logf("%s: GET %s /subtasks/ = %d %s", tt.name, broken, status, body)
		})
	}
}
