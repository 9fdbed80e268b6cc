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
	"sync/atomic"
	"testing"

	"tenancy/internal/loadcheck"
	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/singleschema"
	"tenancy/strategy/strategytest"
)

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
	d := strategytest.NewLoadDeployment(t, singleschema.Harness(), pgtest.Env(t, strategy.SingleSchema, nil))
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
			opts, bouncer := strategytest.ThroughPgBouncer(t, d.Opts, 2)
			var wrap func(strategy.Strategy) strategy.Strategy
			if tt.forgetful {
				wrap = func(s strategy.Strategy) strategy.Strategy { return &forgetful{Strategy: s} }
			}
			_, srv := strategytest.Serve(t, tt.open, opts, wrap)
			res, err := loadcheck.Run(context.Background(), loadcheck.Options{
				URL: srv.URL, BaseDomain: "localhost", Tenants: d.Slugs,
				Requests: 1500, Concurrency: 4, Expect: d.Expect,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s:\n%s", tt.name, strategytest.Report(res))
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
