package multidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tenancy/strategy"
)

// fakePools is a registry over pools that never connect, counting opens.
func fakePools(budget int, maxWait time.Duration) (*tenantPools, func(string) int) {
	var mu sync.Mutex
	opened := map[string]int{}
	p := newTenantPools(budget, budget, maxWait, func(database string) (*sql.DB, error) {
		mu.Lock()
		opened[database]++
		mu.Unlock()
		return sql.Open("pgx", "postgres://nobody@127.0.0.1:1/"+database)
	})
	return p, func(db string) int { mu.Lock(); defer mu.Unlock(); return opened[db] }
}

// TestTenantPoolsKeepATenantToItsShare: one tenant whose requests hang
// gets at most half the budget, so the others are still served.
func TestTenantPoolsKeepATenantToItsShare(t *testing.T) {
	t.Parallel()
	pools, _ := fakePools(4, 50*time.Millisecond)
	defer pools.close()
	ctx := context.Background()
	var held []func()
	for range 2 {
		_, release, err := pools.acquire(ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	if _, _, err := pools.acquire(ctx, "slow"); !errors.Is(err, strategy.ErrTenantUnavailable) {
		t.Errorf("a third connection for one tenant of a budget of 4: err = %v, want ErrTenantUnavailable", err)
	}
	// That wait is what /metrics reports as waiting for a connection.
	if f := pools.figures(); f.WaitCount != 1 || f.WaitDuration < 50*time.Millisecond {
		t.Errorf("after one wait of 50 ms: %d waits, %s waited; want 1 and at least 50 ms", f.WaitCount, f.WaitDuration)
	}
	for _, other := range []string{"a", "b"} {
		_, release, err := pools.acquire(ctx, other)
		if err != nil {
			t.Fatalf("tenant %s while another holds its share: %v", other, err)
		}
		defer release()
	}
	// The budget is full now; the slow tenant's share comes back when it
	// releases.
	held[0]()
	_, release, err := pools.acquire(ctx, "slow")
	if err != nil {
		t.Fatalf("the slow tenant after releasing one: %v", err)
	}
	release()
	held[1]()
	pools.mu.Lock()
	defer pools.mu.Unlock()
	if len(pools.shares) != 2 {
		t.Errorf("shares kept = %d, want 2 (a and b, still held); a tenant without work keeps none", len(pools.shares))
	}
}

func TestTenantPoolsStayWithinBudget(t *testing.T) {
	t.Parallel()
	pools, opened := fakePools(2, 50*time.Millisecond)
	defer pools.close()
	ctx := context.Background()
	_, releaseA, err := pools.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	_, releaseB, err := pools.acquire(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	// The budget is in use: a third acquisition waits maxWait, then gives up.
	if _, _, err := pools.acquire(ctx, "c"); !errors.Is(err, strategy.ErrUnavailable) {
		t.Errorf("acquire beyond the budget: err = %v, want ErrUnavailable", err)
	}
	releaseB()
	releaseB() // idempotent

	// a is still in use and the least recently used: opening c must evict
	// b (idle), never a.
	_, releaseC, err := pools.acquire(ctx, "c")
	if err != nil {
		t.Fatalf("acquire after a release: %v", err)
	}
	if got := pools.live(); got != 2 {
		t.Errorf("live pools = %d, want 2", got)
	}
	releaseA()
	releaseC()
	for _, db := range []string{"a", "b"} {
		_, release, err := pools.acquire(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	if opened("a") != 1 || opened("b") != 2 || opened("c") != 1 {
		t.Errorf("pools opened a, b, c = %d, %d, %d times; want 1, 2, 1 (b evicted as the least recently used idle pool, a kept while in use)", opened("a"), opened("b"), opened("c"))
	}
}

func TestTenantPoolsUnderConcurrency(t *testing.T) {
	t.Parallel()
	const budget = 3
	pools, _ := fakePools(budget, time.Second)
	defer pools.close()
	var inUse, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				db, release, err := pools.acquire(context.Background(), fmt.Sprintf("db%d", (g*7+i)%10))
				if err != nil {
					t.Error(err)
					return
				}
				n := inUse.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				if db == nil {
					t.Error("acquire returned no pool")
				}
				inUse.Add(-1)
				release()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > budget || pools.live() > budget {
		t.Errorf("peak in use %d, live pools %d; want both at most %d", peak.Load(), pools.live(), budget)
	}
}
