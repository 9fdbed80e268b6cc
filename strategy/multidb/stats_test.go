package multidb

import (
	"database/sql"
	"fmt"
	"net/url"
	"testing"
	"time"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// TestPoolStatsThroughEvictions: with more tenants than the server may
// hold connections for, the tenant pools' figures count the pools evicted,
// and every connection opened, those of evicted pools closed; open is
// still opened less closed.
func TestPoolStatsThroughEvictions(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	const maxOpen = 3
	dsn, err := url.Parse(pgtest.DSN("", "", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	q := dsn.Query()
	q.Set("application_name", pgtest.UniqueName("stats"))
	dsn.RawQuery = q.Encode()
	conns := new(connCounts)
	base, err := pg.OpenCountedPool(dsn.String(), 2, 1, &conns.base)
	if err != nil {
		t.Fatal(err)
	}
	m := &Server{base: base, conns: conns, pools: newTenantPools(2, maxOpen, 5*time.Second, func(string) (*sql.DB, error) {
		return pg.OpenCountedPool(dsn.String(), 2, 2, &conns.tenants)
	})}
	t.Cleanup(func() { m.Close() })
	for i := range 6 {
		use(t, m.pools, fmt.Sprintf("t%d", i), 1)
	}
	tenants := func() strategy.PoolStats {
		for _, p := range m.PoolStats() {
			if p.Pool == "tenants" {
				return p
			}
		}
		t.Fatalf("PoolStats() = %+v, no tenants pool", m.PoolStats())
		return strategy.PoolStats{}
	}
	// Evicted pools close in the background.
	want := strategy.PoolStats{Pool: "tenants", Open: maxOpen, Idle: maxOpen, Opened: 6, Closed: 3, Evictions: 3}
	got := tenants()
	for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); got = tenants() {
		time.Sleep(20 * time.Millisecond)
	}
	if got != want {
		t.Errorf("PoolStats() tenants after 6 tenants, %d held at most = %+v, want %+v", maxOpen, got, want)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tenants(); got.Open != 0 || got.Opened != 6 || got.Closed != 6 {
		t.Errorf("PoolStats() tenants after Close = %+v, want 6 opened and closed, none open", got)
	}
}
