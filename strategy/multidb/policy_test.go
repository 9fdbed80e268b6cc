package multidb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"testing"
	"time"

	"tenancy/internal/pgtest"
	"tenancy/strategy/internal/pg"
)

// realPools is a registry whose pools all connect to the test server's
// postgres database, tagged with a unique application_name so the test can
// count, on the server, the connections they hold.
func realPools(t *testing.T, budget, maxOpen int) (*tenantPools, func() int) {
	t.Helper()
	pgtest.Require(t)
	app := pgtest.UniqueName("pools")
	dsn, err := url.Parse(pgtest.DSN("", "", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	q := dsn.Query()
	q.Set("application_name", app)
	dsn.RawQuery = q.Encode()
	p := newTenantPools(budget, maxOpen, 5*time.Second, func(string) (*sql.DB, error) {
		return pg.OpenPool(dsn.String(), budget, budget)
	})
	t.Cleanup(func() { p.close() })
	admin := pgtest.Admin(t, "postgres")
	held := func() int {
		var n int
		if err := admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return p, held
}

// use acquires database's pool and holds n of its connections at once,
// then gives them back.
func use(t *testing.T, p *tenantPools, database string, n int) {
	t.Helper()
	ctx := context.Background()
	var releases []func()
	var conns []*sql.Conn
	for range n {
		db, release, err := p.acquire(ctx, database)
		if err != nil {
			t.Fatalf("acquire %s: %v", database, err)
		}
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("connect %s: %v", database, err)
		}
		releases = append(releases, release)
		conns = append(conns, c)
	}
	for i := range conns {
		conns[i].Close()
		releases[i]()
	}
}

// TestTenantPoolsFollowRecentUse: a tenant keeps idle as many connections
// as it used at once in the last one to two windows, and gives the rest
// back once it has been quieter for a whole window.
func TestTenantPoolsFollowRecentUse(t *testing.T) {
	t.Parallel()
	p, _ := realPools(t, 4, 100) // a tenant's share: 2
	now := time.Unix(1_000_000, 0)
	p.now = func() time.Time { return now }
	idle := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.pools["a"].db.Stats().Idle
	}
	steps := []struct {
		after    time.Duration
		inUse    int
		wantIdle int
		why      string
	}{
		{0, 2, 2, "a burst of two keeps both"},
		{idleWindow, 1, 2, "one window later, the burst still counts"},
		{idleWindow, 1, 1, "a whole window at one: the second goes back"},
		{3 * idleWindow, 1, 1, "long quiet: at least one stays"},
		{time.Second, 2, 2, "a new burst keeps two again"},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		use(t, p, "a", s.inUse)
		if got := idle(); got != s.wantIdle {
			t.Errorf("step %d (%s): idle = %d, want %d", i, s.why, got, s.wantIdle)
		}
	}
	if f := p.figures(); f.TrimmedConns != 1 || f.Opened != 3 {
		t.Errorf("figures = %+v; want 1 connection trimmed and 3 opened", f)
	}
}

// TestTenantPoolsHoldAtMostTheGlobalBudget: with more tenants than the
// server may hold connections for, the least recently used pools are
// closed, and PostgreSQL sees no more than the budget.
func TestTenantPoolsHoldAtMostTheGlobalBudget(t *testing.T) {
	t.Parallel()
	const maxOpen = 3
	p, held := realPools(t, 2, maxOpen)
	for i := range 6 {
		use(t, p, fmt.Sprintf("t%d", i), 1)
		if n := p.figures().Open; n > maxOpen {
			t.Errorf("after tenant %d: the pools hold %d connections, budget %d", i, n, maxOpen)
		}
	}
	// Evicted pools close in the background; the server must see them go.
	deadline := time.Now().Add(5 * time.Second)
	for held() > maxOpen && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := held(); n > maxOpen {
		t.Errorf("PostgreSQL sees %d connections of the pools, budget %d", n, maxOpen)
	}
	f := p.figures()
	if f.EvictedPools != 3 || f.Pools != maxOpen {
		t.Errorf("figures = %+v; want 3 pools evicted and %d live", f, maxOpen)
	}
	// Least recently used: t5 was used last and is still held; t0 was
	// evicted and opens anew.
	opened := f.Opened
	use(t, p, "t5", 1)
	if got := p.figures().Opened; got != opened {
		t.Errorf("the most recently used tenant opened %d new connections, want 0", got-opened)
	}
	use(t, p, "t0", 1)
	if got := p.figures().Opened; got != opened+1 {
		t.Errorf("an evicted tenant opened %d new connections, want 1", got-opened)
	}
}
