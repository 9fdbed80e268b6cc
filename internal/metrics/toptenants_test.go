package metrics

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a time a test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

// start is the start of a slot: 10^9 s since 1970 is a multiple of 5 s.
var start = time.Unix(1_000_000_000, 0)

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(start.UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) set(since time.Duration) { c.ns.Store(start.Add(since).UnixNano()) }

func mustTopTenants(t testing.TB, now func() time.Time) *TopTenants {
	t.Helper()
	tt, err := NewTopTenants(now)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// entries is how many tenant counts t holds now, in every slot.
func (t *TopTenants) entries() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for j := range sh.slots {
			n += len(sh.slots[j].counts)
		}
		sh.mu.Unlock()
	}
	return n
}

func TestTopTenantsOrder(t *testing.T) {
	tests := []struct {
		name     string
		requests map[string]int
		n        int
		want     []TenantRequests
	}{
		{"none", nil, 10, []TenantRequests{}},
		{"busiest first", map[string]int{"tenant-1": 3, "tenant-2": 7, "tenant-3": 5}, 10,
			[]TenantRequests{{"tenant-2", 7}, {"tenant-3", 5}, {"tenant-1", 3}}},
		{"only n", map[string]int{"tenant-1": 3, "tenant-2": 7, "tenant-3": 5}, 2,
			[]TenantRequests{{"tenant-2", 7}, {"tenant-3", 5}}},
		{"ties by name", map[string]int{"tenant-b": 2, "tenant-a": 2, "tenant-c": 9}, 3,
			[]TenantRequests{{"tenant-c", 9}, {"tenant-a", 2}, {"tenant-b", 2}}},
		{"n zero", map[string]int{"tenant-1": 1}, 0, []TenantRequests{}},
		{"n negative", map[string]int{"tenant-1": 1}, -1, []TenantRequests{}},
	}
	for _, tt := range tests {
		clock := newFakeClock()
		top := mustTopTenants(t, clock.now)
		total := 0
		for tenant, n := range tt.requests {
			for i := range n {
				clock.set(time.Duration(i) * time.Second) // across slots
				top.Add(tenant)
			}
			total += n
		}
		clock.set(Window - time.Second) // every request in the window
		got := top.Top(tt.n)
		if !reflect.DeepEqual(got.Tenants, tt.want) {
			t.Errorf("%s: Top(%d).Tenants = %v, want %v", tt.name, tt.n, got.Tenants, tt.want)
		}
		if got.Requests != int64(total) || !got.Exact || got.WindowSeconds != 60 {
			t.Errorf("%s: Top(%d) = %d requests, exact %v, %d s; want %d, true, 60", tt.name, tt.n, got.Requests, got.Exact, got.WindowSeconds, total)
		}
	}
}

// TestTopTenantsWindow: a request counts for a minute at most, and at
// least 55 seconds; a slot of time reused twelve slots later starts from
// nothing.
func TestTopTenantsWindow(t *testing.T) {
	clock := newFakeClock()
	top := mustTopTenants(t, clock.now)
	add := func(at time.Duration, tenant string, n int) {
		clock.set(at)
		for range n {
			top.Add(tenant)
		}
	}
	add(0, "tenant-early", 3)
	add(4999*time.Millisecond, "tenant-late", 2) // the end of the first slot
	add(30*time.Second, "tenant-mid", 1)
	tests := []struct {
		at   time.Duration
		want map[string]int64
	}{
		{0, map[string]int64{"tenant-early": 3, "tenant-late": 2}}, // not the slots ahead of the clock
		{30 * time.Second, map[string]int64{"tenant-early": 3, "tenant-late": 2, "tenant-mid": 1}},
		{59999 * time.Millisecond, map[string]int64{"tenant-early": 3, "tenant-late": 2, "tenant-mid": 1}},
		{60 * time.Second, map[string]int64{"tenant-mid": 1}},
		{89999 * time.Millisecond, map[string]int64{"tenant-mid": 1}},
		{90 * time.Second, map[string]int64{}},
	}
	for _, tt := range tests {
		clock.set(tt.at)
		got := map[string]int64{}
		for _, r := range top.Top(10).Tenants {
			got[r.Tenant] = r.Requests
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Top(10) at %s = %v, want %v", tt.at, got, tt.want)
		}
	}
	// Twelve slots after the first, its place in the ring is reused.
	add(60*time.Second, "tenant-early", 1)
	if got := top.Top(1).Tenants; !reflect.DeepEqual(got, []TenantRequests{{"tenant-early", 1}}) {
		t.Errorf("Top(1) after one request in a reused slot = %v, want tenant-early 1", got)
	}
}

// TestTopTenantsMemoryIsBounded: 100,000 tenants with one request each,
// in one slot and then across all, leave at most MaxEntries counts, and a
// noisy tenant among them still comes first with at least its requests.
func TestTopTenantsMemoryIsBounded(t *testing.T) {
	const distinct = 100_000
	const noisy = "tenant-noisy"
	for _, spread := range []time.Duration{0, Window} {
		clock := newFakeClock()
		top := mustTopTenants(t, clock.now)
		for i := range distinct {
			clock.set(spread * time.Duration(i) / distinct)
			top.Add(fmt.Sprintf("tenant-%d", i))
			if i%20 == 0 {
				top.Add(noisy) // 5,000 requests
			}
		}
		perSlot := tenantShards * slotCapacity
		if n := top.entries(); n > MaxEntries || (spread == 0 && n > perSlot) {
			t.Errorf("spread over %s: %d tenant counts held, want at most %d (%d in one slot)", spread, n, MaxEntries, perSlot)
		}
		rep := top.Top(3)
		if rep.Exact {
			t.Errorf("spread over %s: Top says exact after %d tenants", spread, distinct)
		}
		if len(rep.Tenants) == 0 || rep.Tenants[0].Tenant != noisy {
			t.Errorf("spread over %s: Top(3) = %v, want %s first", spread, rep.Tenants, noisy)
			continue
		}
		// Space-Saving overestimates, never under: within the window,
		// the noisy tenant had at least as many as the slots seen.
		if spread == 0 && rep.Tenants[0].Requests < distinct/20 {
			t.Errorf("Top(3) = %v: %s counted %d, want at least %d", rep.Tenants, noisy, rep.Tenants[0].Requests, distinct/20)
		}
		if rep.Requests > distinct+distinct/20 {
			t.Errorf("spread over %s: %d requests in the window, more than were made", spread, rep.Requests)
		}
	}
}

// TestTopTenantsAddDoesNotAllocate: counting a tenant already counted in
// the slot costs no allocation.
func TestTopTenantsAddDoesNotAllocate(t *testing.T) {
	top := mustTopTenants(t, newFakeClock().now)
	top.Add("tenant-1")
	if n := testing.AllocsPerRun(1000, func() { top.Add("tenant-1") }); n != 0 {
		t.Errorf("Add of a counted tenant: %v allocations, want 0", n)
	}
}

// TestTopTenantsConcurrent: requests counted from many goroutines at once
// are all counted (and -race finds no race).
func TestTopTenantsConcurrent(t *testing.T) {
	top := mustTopTenants(t, newFakeClock().now)
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				top.Add(fmt.Sprintf("tenant-%d", (g+i)%10))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			top.Top(5)
		}
	})
	wg.Wait()
	rep := top.Top(10)
	var sum int64
	for _, r := range rep.Tenants {
		sum += r.Requests
	}
	if len(rep.Tenants) != 10 || sum != goroutines*each || rep.Requests != goroutines*each {
		t.Errorf("Top(10) after %d concurrent requests: %d tenants, %d requests (%d in all), want 10 tenants and %d", goroutines*each, len(rep.Tenants), sum, rep.Requests, goroutines*each)
	}
}

// The benchmarks count requests from every P at once (RunParallel), as
// the server does: over the thousand tenants; over 100,000, where
// the slots are full and Space-Saving replaces tenants; and all for one
// tenant, every request on one lock.
func BenchmarkTopTenantsAdd(b *testing.B) {
	for _, tenants := range []int{1, 1_000, 100_000} {
		b.Run(fmt.Sprintf("tenants=%d", tenants), func(b *testing.B) {
			slugs := make([]string, tenants)
			for i := range slugs {
				slugs[i] = fmt.Sprintf("tenant-%d", i)
			}
			top := mustTopTenants(b, time.Now)
			var seq atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(7919)) // each goroutine from elsewhere in the list
				for pb.Next() {
					top.Add(slugs[i%tenants])
					i++
				}
			})
		})
	}
}

func BenchmarkTopTenantsTop(b *testing.B) {
	for _, tenants := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("tenants=%d", tenants), func(b *testing.B) {
			clock := newFakeClock()
			top := mustTopTenants(b, clock.now)
			for i := range 200_000 {
				clock.set(Window * time.Duration(i) / 200_000)
				top.Add(fmt.Sprintf("tenant-%d", i%tenants))
			}
			b.ResetTimer()
			for b.Loop() {
				top.Top(10)
			}
		})
	}
}
