package singleschema_test

// Isolation under concurrent load, end to end: a real server (the gin
// handlers over singleschema) in front of real PostgreSQL, through
// PgBouncer in transaction pooling mode, hammered with requests for
// randomly mixed tenants by internal/loadcheck, which checks that every row
// served to a tenant is that tenant's own. (The load test that every
// strategy passes, TestNoLeakedRowsUnderConcurrentLoad, is in the
// conformance suite.)

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"tenancy/configs"
	"tenancy/handlers"
	"tenancy/internal/loadcheck"
	"tenancy/internal/pgtest"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/singleschema"
)

// loadTenants is how many tenants each deployment has; the seed options
// give each 1 to 96 subtasks, i.e. up to 10 pages to walk.
const loadTenants = 4

func loadSeed() seed.Options {
	o := seed.DefaultOptions()
	o.Accounts = loadTenants
	o.MaxProjects, o.MaxTasks, o.MaxSubtasks = 6, 4, 4
	return o
}

// deployment is a set-up and seeded singleschema deployment.
type deployment struct {
	opts   strategy.Options // as the server would have them
	slugs  []string
	expect map[string]loadcheck.Expectation
}

// newDeployment sets up and seeds a singleschema deployment from env (a
// pgtest-style environment: PGDATABASE, roles, and the admin connection).
func newDeployment(t *testing.T, env map[string]string) deployment {
	t.Helper()
	cfg, err := configs.Load(pgtest.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := singleschema.NewAdmin(cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatalf("setup: %v", err)
	}
	seeder, err := seed.NewSeeder(admin, 0, nil, nil) // the tenant count is multidb's
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
// the real handlers, on a loopback port. wrap, when set, wraps the strategy
// the handlers see.
func serve(t *testing.T, open func(context.Context, strategy.Options) (strategy.Strategy, error), opts strategy.Options, wrap func(strategy.Strategy) strategy.Strategy) (strategy.Strategy, *httptest.Server) {
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
	h, err := handlers.New(served, handlers.Options{BaseDomain: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return s, srv
}

// throughPgBouncer returns opts pointing at a new PgBouncer (transaction
// pooling, poolSize server connections per role) in front of the
// deployment's server, with the exec mode PgBouncer 1.18 needs.
func throughPgBouncer(t *testing.T, opts strategy.Options, poolSize int) (strategy.Options, *pgtest.PgBouncer) {
	t.Helper()
	b := pgtest.StartPgBouncer(t, pgtest.BouncerOptions{
		ServerHost: opts.Host, ServerPort: opts.Port,
		Users: []string{opts.AppUser, opts.ReaderUser}, PoolSize: poolSize,
	})
	opts.Host, opts.Port, opts.QueryExecMode = "127.0.0.1", b.Port, "exec"
	return opts, b
}

// report is a load check's result as the command prints it.
func report(r loadcheck.Result) string {
	var b strings.Builder
	r.Report(&b)
	return b.String()
}

// checkNoTenantLeftOnConnections: after the load, no connection of the app
// pool carries a tenant into whatever runs on it next. It and getJSON are
// not used by this file's test: they are the singleschema side of the load
// and fault tests every strategy passes (the old
// TestNoLeakedRowsUnderConcurrentLoad and TestPostgresRestartUnderLoad,
// now in the conformance suite), which checked this after their load.
func checkNoTenantLeftOnConnections(t *testing.T, s strategy.Strategy, n int) {
	t.Helper()
	settings, err := singleschema.TenantSettingsOfIdleConnections(context.Background(), s, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range settings {
		if v != "" {
			t.Errorf("app connection %d of %d still has app.tenant_id = %q after its transaction", i+1, len(settings), v)
		}
	}
}

// forgetful serves every other subtask list through a code path that
// forgot the tenant: raw SQL on the app role outside Tx (see
// singleschema.ListSubtasksForgettingTheTenant). The other half goes through
// the strategy as shipped, setting the tenant in each transaction.
type forgetful struct {
	strategy.Strategy
	calls atomic.Int64
}

func (f *forgetful) ListSubtasks(ctx context.Context, page, perPage int) (strategy.SubtaskPage, error) {
	if f.calls.Add(1)%2 == 0 {
		return singleschema.ListSubtasksForgettingTheTenant(ctx, f.Strategy, page, perPage)
	}
	return f.Strategy.ListSubtasks(ctx, page, perPage)
}

// TestSessionLevelTenantLeaksThroughPgBouncer shows that the load check
// goes red when the tenant setting is session-level instead of
// transaction-local, and why transaction-local matters.
//
// The strategy sets app.tenant_id at the start of every tenant transaction,
// so with a session-level setting each of *its* transactions still reads
// with the right tenant: the setting left behind is overwritten before it
// is used, and the plain load test stays green (the first row of the table
// shows it). What a session-level setting breaks is the fail-safe. Row-level
// security exists for the code path that does not go through Tx: a raw
// query, a background job, a report, another service sharing the role. With
// a transaction-local setting such a path sees no tenant and no rows (it
// fails closed); with a session-level one it runs under whichever tenant
// last used that server connection. PgBouncer in transaction mode makes
// this worse: it hands server connections from client to client without a
// reset, so even a client that never set a tenant inherits one.
//
// So the honest demonstration runs half of the requests through such a
// forgetful path (ListSubtasksForgettingTheTenant) and the other half as
// shipped, through PgBouncer with 2 server connections, and changes only
// set_config's is_local between the rows. Transaction-local: zero leaked
// rows (the forgetful half sees nothing). Session-level: the forgetful half
// serves other tenants' rows and the checker counts them. Last, a separate
// client through the same PgBouncer, which never set a tenant, reads
// app.tenant_id: empty with transaction-local settings, another client's
// tenant with session-level ones.
func TestSessionLevelTenantLeaksThroughPgBouncer(t *testing.T) {
	d := newDeployment(t, pgtest.Env(t, strategy.SingleSchema, nil))
	tests := []struct {
		name          string
		open          func(context.Context, strategy.Options) (strategy.Strategy, error)
		forgetful     bool
		wantLeaks     bool
		wantInherited bool // a client that never set a tenant sees one
	}{
		{"session-level, every read in Tx", singleschema.OpenWithSessionLevelTenant, false, false, true},
		{"transaction-local, half the reads forget the tenant", singleschema.Harness().Open, true, false, false},
		{"session-level, half the reads forget the tenant", singleschema.OpenWithSessionLevelTenant, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, bouncer := throughPgBouncer(t, d.opts, 2)
			var wrap func(strategy.Strategy) strategy.Strategy
			if tt.forgetful {
				wrap = func(s strategy.Strategy) strategy.Strategy { return &forgetful{Strategy: s} }
			}
			_, srv := serve(t, tt.open, opts, wrap)
			res, err := loadcheck.Run(context.Background(), loadcheck.Options{
				URL: srv.URL, BaseDomain: "localhost", Tenants: d.slugs,
				Requests: 1500, Concurrency: 4, Expect: d.expect,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s:\n%s", tt.name, report(res))
			if res.OK == 0 || res.RowsChecked == 0 {
				t.Fatalf("%s: %d of %d requests OK, %d rows checked: the load did not run", tt.name, res.OK, res.Requests, res.RowsChecked)
			}
			if got := res.LeakedRows > 0; got != tt.wantLeaks {
				t.Errorf("%s: %d leaked rows, want leaks: %v", tt.name, res.LeakedRows, tt.wantLeaks)
			}

			// A client of its own through the same PgBouncer, as the app
			// role, that never sets a tenant.
			other, err := sql.Open("pgx", fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable&default_query_exec_mode=exec",
				opts.AppUser, bouncer.Port, opts.Database))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			inherited := 0
			for range 20 {
				var v sql.NullString
				if err := other.QueryRow("SELECT current_setting('app.tenant_id', true)").Scan(&v); err != nil {
					t.Fatalf("read app.tenant_id through PgBouncer: %v", err)
				}
				if v.String != "" {
					inherited++
				}
			}
			if got := inherited > 0; got != tt.wantInherited {
				t.Errorf("%s: a client that never set a tenant saw one in %d of 20 transactions, want some: %v", tt.name, inherited, tt.wantInherited)
			}
		})
	}
}

// Compile-time check that the wrapper still is a Strategy.
var _ strategy.Strategy = (*forgetful)(nil)

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
