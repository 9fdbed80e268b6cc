package multischema

import (
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// PoolStats reports the app pool, which every tenant's work runs on under
// the tenant's role, and the reader's, which looks tenants up and serves
// the all-tenants view.
func (s *Server) PoolStats() []strategy.PoolStats {
	return []strategy.PoolStats{
		pg.PoolStatsOf("app", s.pools[0], &s.conns[0]),
		pg.PoolStatsOf("reader", s.pools[1], &s.conns[1]),
	}
}

var _ strategy.PoolStatsReporter = (*Server)(nil)
