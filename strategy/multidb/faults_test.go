package multidb_test

// Faults under load: one multidb tenant's database dropped or closed to
// connections while the others are served.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"tenancy/configs"
	"tenancy/handlers"
	"tenancy/internal/loadcheck"
	"tenancy/internal/pgtest"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/multidb"
)

// The message the user sees (handlers/errors.go); the test checks the user
// is told something clear, not how it is worded to the letter.
const tenantUnreachableMessage = "This tenant's database is not available right now"

// loadTenants is how many tenants each deployment has; the seed options
// give each 1 to 96 subtasks, i.e. up to 10 pages to walk.
const loadTenants = 4

func loadSeed() seed.Options {
	o := seed.DefaultOptions()
	o.Accounts = loadTenants
	o.MaxProjects, o.MaxTasks, o.MaxSubtasks = 6, 4, 4
	return o
}

// deployment is a set-up and seeded multidb deployment.
type deployment struct {
	opts   strategy.Options // as the server would have them
	slugs  []string
	expect map[string]loadcheck.Expectation
}

// newDeployment sets up and seeds a deployment from env (a pgtest-style
// environment: PGDATABASE, roles, and the admin connection).
func newDeployment(t *testing.T, env map[string]string) deployment {
	t.Helper()
	env["MULTIDB_COUNT"] = fmt.Sprint(loadTenants)
	cfg, err := configs.Load(pgtest.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := multidb.NewAdmin(cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatalf("setup: %v", err)
	}
	seeder, err := seed.NewSeeder(admin, cfg.Strategy.TenantCount, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seeder.Run(ctx, loadSeed()); err != nil {
		t.Fatalf("seed: %v", err)
	}
	d := deployment{opts: cfg.Strategy, expect: map[string]loadcheck.Expectation{}}
	for i := range loadTenants {
		gen := seed.Generate(loadSeed(), i, "")
		names := map[string]int{}
		for _, s := range gen.Subtasks {
			names[s.Name]++
		}
		slug := strategy.Slug(i)
		d.slugs = append(d.slugs, slug)
		d.expect[slug] = loadcheck.Expectation{Total: len(gen.Subtasks), Names: names}
	}
	return d
}

// serve opens the server side of a deployment with opts and serves it, over
// the real handlers, on a loopback port.
func serve(t *testing.T, opts strategy.Options) *httptest.Server {
	t.Helper()
	s, err := multidb.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open %s: %v", opts.Strategy, err)
	}
	t.Cleanup(func() { s.Close() })
	gin.SetMode(gin.ReleaseMode)
	h, err := handlers.New(s, handlers.Options{BaseDomain: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// report is a load check's result as the command prints it.
func report(r loadcheck.Result) string {
	var b strings.Builder
	r.Report(&b)
	return b.String()
}

// getJSON asks srv for path with the Host header host and returns the
// status (0 when there was no answer) and the body.
func getJSON(t *testing.T, srv *httptest.Server, host, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Accept", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(body)
}

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
			srv := serve(t, d.opts)
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
