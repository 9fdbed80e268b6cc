package metrics

import (
	"cmp"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// The top tenants' window and its bounds.
const (
	// Window is how far back TopTenants counts: a request is counted for
	// between 55 and 60 seconds, as the window moves in slots.
	Window    = 60 * time.Second
	slotWidth = 5 * time.Second
	slotCount = int(Window / slotWidth)
	// tenantShards spreads the tenants over locks of their own, so that
	// requests for different tenants seldom wait for each other.
	tenantShards = 16
	// slotCapacity is how many tenants one shard counts in one slot;
	// so tenantShards*slotCapacity (2,048) tenants are counted exactly
	// in each slot when spread evenly, and past that the Space-Saving
	// algorithm keeps the busiest.
	slotCapacity = 128
	// MaxEntries bounds the tenants TopTenants holds counts for at once,
	// however many there are.
	MaxEntries = tenantShards * slotCount * slotCapacity
)

// TopTenants counts requests per tenant over the last minute, in bounded
// memory and cheaply enough for every request: one lock of sixteen, one
// map update. Time is cut into 5-second slots; each shard of the tenants
// keeps a count per tenant for each of the last 12 slots.
//
// A shard's slot counts at most slotCapacity tenants. A tenant that
// arrives when it is full takes the place of the least counted one and
// inherits its count plus one (Metwally, Agrawal and El Abbadi's
// Space-Saving): a tenant with more than a 128th of its shard's requests
// in a slot is never dropped, and the counts become upper bounds, which
// TopTenantsReport.Exact says.
type TopTenants struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [tenantShards]tenantShard
}

type tenantShard struct {
	mu    sync.Mutex
	slots [slotCount]tenantSlot
	_     [64]byte // keeps shards' locks off each other's cache lines
}

// NewTopTenants returns an empty TopTenants reading the time from now.
func NewTopTenants(now func() time.Time) (*TopTenants, error) {
	if now == nil {
		return nil, errors.New("metrics: clock must not be nil")
	}
	t := &TopTenants{now: now, seed: maphash.MakeSeed()}
	for i := range t.shards {
		for j := range t.shards[i].slots {
			t.shards[i].slots[j].n = -1
		}
	}
	return t, nil
}

// slotOf is the slot of time at.
func slotOf(at time.Time) int64 { return at.UnixNano() / int64(slotWidth) }

// Add counts one request for tenant.
func (t *TopTenants) Add(tenant string) {
	n := slotOf(t.now())
	if n < 0 {
		return // before 1970: a clock gone wrong
	}
	sh := &t.shards[maphash.String(t.seed, tenant)%tenantShards]
	sh.mu.Lock()
	s := &sh.slots[n%int64(slotCount)]
	if s.n != n {
		s.start(n)
	}
	s.add(tenant)
	sh.mu.Unlock()
}

// tenantSlot is one shard's counts over one slot of time.
type tenantSlot struct {
	n int64 // which slot of time: Unix time / slotWidth
	// counts holds at most slotCapacity tenants, found through index: a
	// slice, so that finding the least counted one is a short scan.
	counts []TenantRequests
	index  map[string]int
	total  int64
	// replaced: a tenant was dropped to make room, so the counts are
	// upper bounds.
	replaced bool
}

// start empties s for slot n, keeping its memory.
func (s *tenantSlot) start(n int64) {
	if s.index == nil {
		s.index = make(map[string]int, slotCapacity)
		s.counts = make([]TenantRequests, 0, slotCapacity)
	}
	clear(s.index)
	clear(s.counts) // lets go of the names
	s.counts = s.counts[:0]
	s.n, s.total, s.replaced = n, 0, false
}

func (s *tenantSlot) add(tenant string) {
	s.total++
	if i, ok := s.index[tenant]; ok {
		s.counts[i].Requests++
		return
	}
	if len(s.counts) < slotCapacity {
		s.index[tenant] = len(s.counts)
		s.counts = append(s.counts, TenantRequests{tenant, 1})
		return
	}
	// Full: the least counted tenant makes room (Space-Saving), which
	// costs a scan of slotCapacity counts, only while more tenants than
	// a slot holds are busy at once.
	least := 0
	for i, c := range s.counts {
		if c.Requests < s.counts[least].Requests {
			least = i
		}
	}
	delete(s.index, s.counts[least].Tenant)
	s.index[tenant] = least
	s.counts[least] = TenantRequests{tenant, s.counts[least].Requests + 1}
	s.replaced = true
}

// TenantRequests is one tenant's requests over the window.
type TenantRequests struct {
	Tenant   string `json:"tenant"`
	Requests int64  `json:"requests"`
}

// TopTenantsReport is the busiest tenants over the window, busiest first.
type TopTenantsReport struct {
	WindowSeconds int `json:"window_seconds"`
	// Requests is every tenant's requests over the window, the busiest
	// and the rest.
	Requests int64 `json:"requests"`
	// Exact is false when more tenants were busy at once than the counts
	// hold: then each count is an upper bound, too high by at most the
	// count of the least busy tenant held (see TopTenants).
	Exact   bool             `json:"exact"`
	Tenants []TenantRequests `json:"tenants"`
}

// Top returns the n tenants with the most requests over the window
// (fewer if fewer had any), ties in name order.
func (t *TopTenants) Top(n int) TopTenantsReport {
	now := slotOf(t.now())
	rep := TopTenantsReport{WindowSeconds: int(Window / time.Second), Exact: true, Tenants: []TenantRequests{}}
	var counts []TenantRequests
	sums := map[string]int64{}
	for i := range t.shards {
		// Copied under the lock, added up after: the shard's requests
		// wait a few microseconds, not for the adding up. A tenant is
		// always in the same shard, so each shard adds up alone.
		counts = counts[:0]
		sh := &t.shards[i]
		sh.mu.Lock()
		for j := range sh.slots {
			s := &sh.slots[j]
			if s.n > now-int64(slotCount) && s.n <= now {
				counts = append(counts, s.counts...)
				rep.Requests += s.total
				rep.Exact = rep.Exact && !s.replaced
			}
		}
		sh.mu.Unlock()
		clear(sums)
		for _, c := range counts {
			sums[c.Tenant] += c.Requests
		}
		for k, c := range sums {
			rep.Tenants = append(rep.Tenants, TenantRequests{k, c})
		}
	}
	slices.SortFunc(rep.Tenants, func(a, b TenantRequests) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Tenant, b.Tenant))
	})
	if len(rep.Tenants) > n {
		rep.Tenants = rep.Tenants[:max(n, 0)]
	}
	return rep
}
