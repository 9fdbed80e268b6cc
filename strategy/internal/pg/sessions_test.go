package pg

import (
	"context"
	"database/sql"
	"testing"

	"tenancy/internal/pgtest"
)

// TestSessionsRenew: after Renew, no connection opened before is used
// again, whether it was idle or in use at the time, and every new one runs
// the new setup. This is what lets a singleschema server that finds its
// tables distributed by Citus stop using connections that plan for a
// single node.
func TestSessionsRenew(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	ctx := context.Background()
	var sessions Sessions
	var counts ConnCounts
	pool, err := OpenCountedPoolWith(pgtest.DSN("", "", "postgres"), 3, 3, &counts, &sessions)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	modes := func(step string, want string) {
		t.Helper()
		var held []*sql.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for i := range 3 {
			c, err := pool.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			var mode string
			if err := c.QueryRowContext(ctx, "SHOW plan_cache_mode").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != want {
				t.Errorf("%s: connection %d has plan_cache_mode %s, want %s", step, i+1, mode, want)
			}
		}
	}
	modes("before Renew", "auto")
	busy, err := pool.Conn(ctx) // in use while the setup changes
	if err != nil {
		t.Fatal(err)
	}
	opened := counts.Opened()
	sessions.Renew("SET plan_cache_mode = force_custom_plan")
	busy.Close()
	modes("after Renew", "force_custom_plan")
	if got := counts.Opened() - opened; got != 3 {
		t.Errorf("after Renew the pool opened %d connections, want 3 new ones", got)
	}
	opened = counts.Opened()
	modes("again", "force_custom_plan")
	if got := counts.Opened() - opened; got != 0 {
		t.Errorf("without a Renew the pool opened %d connections, want the 3 it has reused", got)
	}
}
