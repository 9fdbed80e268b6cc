package strategytest

import (
	"slices"
	"testing"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
)

// testPoolStatsFollowTheConnections: the server reports its pools, the
// same ones by name at every call; a transaction in progress is a
// connection in use; at rest every open connection is idle and is one
// opened and not closed; and once the server is closed every connection
// it opened is counted closed.
func testPoolStatsFollowTheConnections(t *testing.T, h Harness) {
	_, admin, s := Deploy(t, h)
	r, ok := s.(strategy.PoolStatsReporter)
	if !ok {
		t.Fatalf("%s's server (%T) does not implement strategy.PoolStatsReporter", h.Name, s)
	}
	tenants := []models.Account{AddTenant(t, admin, s, "tenant-0", 2), AddTenant(t, admin, s, "tenant-1", 2)}
	var during []strategy.PoolStats
	err := s.Tx(TenantCtx(tenants[0]), func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT 1").Error; err != nil {
			return err
		}
		during = r.PoolStats()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inUse := sum(during, func(p strategy.PoolStats) int64 { return int64(p.InUse) }); inUse < 1 {
		t.Errorf("PoolStats during a transaction = %+v: %d in use, want at least 1", during, inUse)
	}
	for _, a := range tenants {
		if _, err := s.ListSubtasks(TenantCtx(a), 1, 10); err != nil {
			t.Fatal(err)
		}
	}

	rest := r.PoolStats()
	if len(rest) == 0 {
		t.Fatal("PoolStats() reported no pool")
	}
	if !slices.Equal(poolNames(rest), poolNames(during)) {
		t.Errorf("PoolStats() named its pools %q, then %q; want the same each time", poolNames(during), poolNames(rest))
	}
	if names := poolNames(rest); len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) || slices.Contains(names, "") {
		t.Errorf("PoolStats() pool names %q: want distinct, non-empty names", names)
	}
	if opened := sum(rest, func(p strategy.PoolStats) int64 { return p.Opened }); opened < 1 {
		t.Errorf("PoolStats() after tenant work = %+v: %d connections opened, want at least 1", rest, opened)
	}
	for _, p := range rest {
		if p.InUse != 0 || p.Open != p.Idle || int64(p.Open) != p.Opened-p.Closed {
			t.Errorf("PoolStats() at rest: %+v; want nothing in use, every open connection idle and opened-closed = open", p)
		}
		if p.Evictions < 0 || p.WaitCount < 0 || p.WaitDuration < 0 {
			t.Errorf("PoolStats() at rest: %+v; want no negative count", p)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range r.PoolStats() {
		if p.Open != 0 || p.Closed != p.Opened {
			t.Errorf("PoolStats() after Close: %+v; want nothing open, every connection opened closed", p)
		}
	}
}

func poolNames(stats []strategy.PoolStats) []string {
	names := make([]string, len(stats))
	for i, p := range stats {
		names[i] = p.Pool
	}
	return names
}

func sum(stats []strategy.PoolStats, f func(strategy.PoolStats) int64) int64 {
	var n int64
	for _, p := range stats {
		n += f(p)
	}
	return n
}
