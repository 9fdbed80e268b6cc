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
// tenant in monitoring, which a thousand tenants would swamp. The tenant
// pools' figures are the pool policy's (figures: closed pools' waits
// kept, Evictions the pools it closed whole to make room), with the
// connections opened and closed counted at their sockets (connCounts),
// which figures can only estimate.
//
// The waits are acquire's, for a slot of the tenant's share or of the
// working budget, which is where a multidb request waits, together with
// database/sql's own (rare: acquire lets no more callers at a pool than
// the pool may open).
func (m *Server) PoolStats() []strategy.PoolStats {
	f := m.pools.figures()
	tenants := strategy.PoolStats{
		Pool: "tenants",
		Open: f.Open, Idle: f.Idle, InUse: f.InUse,
		WaitCount: f.WaitCount, WaitDuration: f.WaitDuration,
		Opened: m.conns.tenants.Opened(), Closed: m.conns.tenants.Closed(),
		Evictions: f.EvictedPools,
	}
	return []strategy.PoolStats{pg.PoolStatsOf("base", m.base, &m.conns.base), tenants}
}

var _ strategy.PoolStatsReporter = (*Server)(nil)
