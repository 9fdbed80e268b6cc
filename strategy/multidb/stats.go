package multidb

import (
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// connCounts counts the connections of a server's pools: the base
// database's, and every tenant pool's, those closed since included.
type connCounts struct {
	base, tenants pg.ConnCounts
}

// PoolStats reports the base database's pool (health checks) and the
// tenant pools as one: a pool per tenant database would be a series per
// tenant in monitoring, which a thousand tenants would swamp.
func (m *Server) PoolStats() []strategy.PoolStats {
	tenants := m.pools.stats()
	tenants.Pool = "tenants"
	tenants.Opened, tenants.Closed = m.conns.tenants.Opened(), m.conns.tenants.Closed()
	return []strategy.PoolStats{pg.PoolStatsOf("base", m.base, &m.conns.base), tenants}
}

var _ strategy.PoolStatsReporter = (*Server)(nil)

// stats adds up the tenant pools open now: their connections, and the
// waits for one in database/sql. Opened and Closed are the server's
// (connCounts), which keep what closed pools did.
//
// The waits of a pool that has been closed leave the sum with it, so
// WaitCount and WaitDuration can go down when a pool that waited is
// evicted. They rarely move at all: acquire lets no more callers at a
// pool than it has connections (a tenant's share is half the budget, and
// each pool may open the whole budget), so the waits that matter are
// acquire's own, for a slot of the share or of the budget.
// TODO(pool policy): count acquire's waits, and keep an evicted pool's
// database/sql waits, so that both only grow.
func (p *tenantPools) stats() strategy.PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sum strategy.PoolStats
	for _, tp := range p.pools {
		sum = pg.AddPoolStats(sum, tp.db.Stats())
	}
	// TODO(pool policy): evictions: count the pools (or idle connections)
	// evictLocked closes to make room.
	sum.Evictions = 0
	return sum
}
