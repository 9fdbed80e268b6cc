package strategytest

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
)

// loadTenants is how many tenants a load deployment has; the seed options
// give each 1 to 96 subtasks, i.e. up to 10 pages to walk.
const loadTenants = 4

func loadSeed() seed.Options {
	o := seed.DefaultOptions()
	o.Accounts = loadTenants
	o.MaxProjects, o.MaxTasks, o.MaxSubtasks = 6, 4, 4
	return o
}

// LoadDeployment is a set-up and seeded deployment of one strategy, and
// what the load check expects of each tenant.
type LoadDeployment struct {
	Opts   strategy.Options // as the server would have them
	Slugs  []string
	Expect map[string]loadcheck.Expectation
}

// NewLoadDeployment sets up and seeds a deployment of h from env (a
// pgtest-style environment: PGDATABASE, roles, and the admin connection).
func NewLoadDeployment(t testing.TB, h Harness, env map[string]string) LoadDeployment {
	t.Helper()
	env["STRATEGY"] = h.Name
	env["MULTIDB_COUNT"] = fmt.Sprint(loadTenants)
	cfg, err := configs.Load(pgtest.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := h.OpenAdmin(cfg.Strategy)
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
	d := LoadDeployment{Opts: cfg.Strategy, Expect: map[string]loadcheck.Expectation{}}
	for i := range loadTenants {
		gen := seed.Generate(loadSeed(), i, "")
		names := map[string]int{}
		for _, s := range gen.Subtasks {
			names[s.Name]++
		}
		slug := strategy.Slug(i)
		d.Slugs = append(d.Slugs, slug)
		d.Expect[slug] = loadcheck.Expectation{Total: len(gen.Subtasks), Names: names}
	}
	return d
}

// Serve opens the server side with open and opts and serves it, over the
// real handlers, on a loopback port. wrap, when set, wraps the strategy the
// handlers see.
func Serve(t testing.TB, open func(context.Context, strategy.Options) (strategy.Strategy, error), opts strategy.Options, wrap func(strategy.Strategy) strategy.Strategy) (strategy.Strategy, *httptest.Server) {
	t.Helper()
	s, err := open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open %s: %v", opts.Strategy, err)
	}
	t.Cleanup(func() { s.Close() })
	served := s
	if wrap != nil {
		served = wrap(s)
	}
	gin.SetMode(gin.ReleaseMode)
	handler, err := handlers.New(served, handlers.Options{BaseDomain: "localhost", AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return s, srv
}

// ThroughPgBouncer returns opts pointing at a new PgBouncer (transaction
// pooling, poolSize server connections per role) in front of the
// deployment's server, with the exec mode PgBouncer 1.18 needs.
func ThroughPgBouncer(t testing.TB, opts strategy.Options, poolSize int) (strategy.Options, *pgtest.PgBouncer) {
	t.Helper()
	b := pgtest.StartPgBouncer(t, pgtest.BouncerOptions{
		ServerHost: opts.Host, ServerPort: opts.Port,
		Users: []string{opts.AppUser, opts.ReaderUser}, PoolSize: poolSize,
	})
	opts.Host, opts.Port, opts.QueryExecMode = "127.0.0.1", b.Port, "exec"
	return opts, b
}

// Report is a load check's result as the command prints it.
func Report(r loadcheck.Result) string {
	var b strings.Builder
	r.Report(&b)
	return b.String()
}

// GetJSON asks srv for path with the Host header host and returns the
// status (0 when there was no answer) and the body.
func GetJSON(t testing.TB, srv *httptest.Server, host, path string) (int, string) {
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

// testNoLeakedRowsUnderConcurrentLoad: 10,000 requests for randomly mixed
// tenants, 4 at a time, through the real handlers: every row served is the
// requesting tenant's, every page is what the seed made. Directly, and
// behind PgBouncer in transaction mode (2 server connections per role, so
// they really pass from client to client) when the strategy serves there.
func testNoLeakedRowsUnderConcurrentLoad(t *testing.T, h Harness) {
	ways := []bool{false}
	if h.ThroughPgBouncer {
		ways = append(ways, true)
	}
	for _, viaPgBouncer := range ways {
		t.Run(map[bool]string{false: "direct", true: "through PgBouncer"}[viaPgBouncer], func(t *testing.T) {
			d := NewLoadDeployment(t, h, pgtest.Env(t, h.Name, nil))
			opts := d.Opts
			var bouncer *pgtest.PgBouncer
			if viaPgBouncer {
				opts, bouncer = ThroughPgBouncer(t, opts, 2)
			}
			s, srv := Serve(t, h.Open, opts, nil)
			res, err := loadcheck.Run(context.Background(), loadcheck.Options{
				URL: srv.URL, BaseDomain: "localhost", Tenants: d.Slugs,
				Requests: 10_000, Concurrency: 4, Expect: d.Expect,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s:\n%s", h.Name, Report(res))
			if res.Requests < 10_000 || res.OK != res.Requests || res.RowsChecked == 0 {
				t.Errorf("%d of %d requests OK, %d rows checked; want 10000 OK", res.OK, res.Requests, res.RowsChecked)
			}
			if res.LeakedRows != 0 || res.Mismatches != 0 {
				t.Errorf("%d leaked rows, %d mismatched pages; want none", res.LeakedRows, res.Mismatches)
			}
			for _, slug := range d.Slugs {
				if res.PerTenant[slug].OK == 0 {
					t.Errorf("no request for %s succeeded: the tenants were not mixed", slug)
				}
			}
			CheckNoTenantLeftOnConnections(t, h, s, opts.Budget())
			if bouncer != nil && t.Failed() {
				t.Logf("PgBouncer log:\n%s", bouncer.Log())
			}
		})
	}
}

// Messages the user sees (handlers/errors.go); the tests check the user is
// told something clear, not how it is worded to the letter.
const unreachableMessage = "The database is not reachable right now."

// Background runs a load check until stop is called, which returns what
// it saw.
func Background(t testing.TB, o loadcheck.Options) (stop func() loadcheck.Result) {
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

// WaitForOK polls until a request answers 200 and returns how long that
// took.
func WaitForOK(t testing.TB, srv *httptest.Server, host, path string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if status, _ := GetJSON(t, srv, host, path); status == http.StatusOK {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s did not answer 200 within %s", host, path, within)
	return 0
}

// testPostgresRestartUnderLoad stops PostgreSQL (fast mode, as a restart
// does) while requests are running, keeps the load on through the outage,
// starts it again, and checks: during the outage every failure is a 503
// with the "not reachable" message (no 500, no dropped connection, no
// leaked row); afterwards every request succeeds again with the same
// server. It uses a throwaway cluster of its own: the shared one serves
// other tests.
func testPostgresRestartUnderLoad(t *testing.T, h Harness) {
	cluster := pgtest.NewCluster(t)
	env := cluster.Env()
	env["PGDATABASE"] = "restart_" + h.Name
	env["SECRET_KEY"] = "test-secret-key-0123456789"
	d := NewLoadDeployment(t, h, env)
	opts := d.Opts
	opts.MaxConns = 8
	s, srv := Serve(t, h.Open, opts, nil)
	load := loadcheck.Options{URL: srv.URL, BaseDomain: "localhost", Tenants: d.Slugs, Concurrency: 4, Expect: d.Expect}

	stop := Background(t, load)
	time.Sleep(500 * time.Millisecond)
	cluster.Stop(t)
	time.Sleep(time.Second) // under load, with PostgreSQL down
	healthStatus, _ := GetJSON(t, srv, "127.0.0.1", "/healthz")
	pageStatus, pageBody := GetJSON(t, srv, "tenant-0.localhost", "/subtasks/")
	cluster.Start(t)
	recovered := WaitForOK(t, srv, "tenant-1.localhost", "/subtasks/", 30*time.Second)
	time.Sleep(500 * time.Millisecond) // and some load after
	during := stop()
	t.Logf("load through the restart (recovered %s after start):\n%s", recovered.Round(time.Millisecond), Report(during))

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
	t.Logf("after the restart:\n%s", Report(after))
	if after.OK != after.Requests || after.LeakedRows != 0 || after.Mismatches != 0 {
		t.Errorf("after the restart: %d of %d OK, %d leaked rows, %d mismatches; want all OK, none", after.OK, after.Requests, after.LeakedRows, after.Mismatches)
	}
	CheckNoTenantLeftOnConnections(t, h, s, opts.MaxConns)
}
