package multidb

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"tenancy/internal/loadcheck"
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

// TestTenantPoolsProtectBusyTenants: a tenant used twice keeps its pool
// while a stream of tenants seen once passes through, where plain LRU
// closes it after as many of them as the pools can hold; and a tenant back
// soon after its pool was closed is protected at once.
func TestTenantPoolsProtectBusyTenants(t *testing.T) {
	for _, segmented := range []bool{true, false} {
		t.Run(fmt.Sprintf("segmented=%v", segmented), func(t *testing.T) {
			pools, opened := fakePools(3, time.Second) // at most 3 pools
			defer pools.close()
			pools.segmented = segmented
			now := time.Unix(1_000_000, 0)
			pools.now = func() time.Time { return now }
			// A request's second use of its tenant's pool does not
			// protect it; the tenant coming back later does.
			tick := func() { now = now.Add(promoteAfter) }
			once := func(db string) {
				_, release, err := pools.acquire(context.Background(), db)
				if err != nil {
					t.Fatal(err)
				}
				release()
			}
			once("busy")
			once("busy") // the same request
			once("same-request")
			once("same-request")
			tick()
			once("busy") // back a second later
			kept := 0
			for i := range 6 {
				tick()
				once(fmt.Sprintf("once-%d", i))
				pools.mu.Lock()
				if _, ok := pools.pools["busy"]; ok {
					kept++
				}
				pools.mu.Unlock()
			}
			if want := map[bool]int{true: 6, false: 2}[segmented]; kept != want {
				t.Errorf("the busy tenant's pool stayed open through %d of 6 tenants seen once, want %d", kept, want)
			}
			if !segmented {
				return
			}
			// once-3's pool was the last closed: back now, it is
			// protected, and the next tenants seen once do not close it.
			once("once-3")
			for i := range 3 {
				once(fmt.Sprintf("again-%d", i))
			}
			pools.mu.Lock()
			_, busy := pools.pools["busy"]
			_, back := pools.pools["once-3"]
			pools.mu.Unlock()
			if !busy || !back || opened("once-3") != 2 {
				t.Errorf("busy open %v, once-3 open %v (opened %d times); want both kept, once-3 opened twice", busy, back, opened("once-3"))
			}
		})
	}
}

// TestSegmentedEvictionUnderZipf replays Zipf-skewed tenants (s = 1.1,
// 1,000 tenants, the same sequence each way) against 150 pools, as the
// server meets them at 1,000 tenant databases, and counts the pools
// opened: the segmented policy must open clearly fewer than plain LRU, and
// fewer than with a ghost list as long as the pools are many.
func TestSegmentedEvictionUnderZipf(t *testing.T) {
	t.Parallel()
	const tenants, pools, requests, warm = 1000, 150, 40000, 10000
	cdf := loadcheck.ZipfCDF(tenants, 1.1)
	misses := func(segmented bool, ghosts int) float64 {
		p, _ := fakePools(2, time.Second)
		defer p.close()
		p.maxOpen, p.segmented = pools, segmented
		// 1,000 requests a second, each using its tenant's pool twice
		// (the tenant looked up, then its page), as the server does when
		// the tenant cache has expired.
		now := time.Unix(1_000_000, 0)
		p.now = func() time.Time { return now }
		rng := rand.New(rand.NewPCG(1, 2))
		opened := 0
		for i := range requests {
			k, _ := slices.BinarySearch(cdf, rng.Float64())
			db := strconv.Itoa(k)
			p.mu.Lock()
			_, open := p.pools[db]
			p.mu.Unlock()
			if !open && i >= warm {
				opened++
			}
			for range 2 {
				_, release, err := p.acquire(context.Background(), db)
				if err != nil {
					t.Fatal(err)
				}
				release()
			}
			now = now.Add(time.Millisecond)
			// The ghost list as the size under test.
			p.mu.Lock()
			for p.ghosts.Len() > ghosts {
				oldest := p.ghosts.Back()
				delete(p.ghostOf, oldest.Value.(string))
				p.ghosts.Remove(oldest)
			}
			p.mu.Unlock()
		}
		return float64(opened) / (requests - warm)
	}
	lru := misses(false, 0)
	chosen := misses(true, ghostsOf(pools))
	t.Logf("pools opened per request: LRU %.1f%%, segmented with %d ghosts %.1f%%", 100*lru, ghostsOf(pools), 100*chosen)
	if chosen > 0.85*lru {
		t.Errorf("segmented eviction opened a pool on %.1f%% of requests, plain LRU on %.1f%%: want at least 15%% fewer", 100*chosen, 100*lru)
	}
	for _, ghosts := range []int{pools} {
		if m := misses(true, ghosts); m < chosen {
			t.Errorf("%d ghosts missed %.1f%%, fewer than the chosen %d's %.1f%%", ghosts, 100*m, ghostsOf(pools), 100*chosen)
		}
	}
}
