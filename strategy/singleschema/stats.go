package singleschema

import (
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// PoolStats reports the app pool, which tenant work runs on, and the
// reader's, which looks tenants up and serves the all-tenants view, and on
// Citus the worker pools that serve tenants' pages (workerReads), as one.
func (s *Server) PoolStats() []strategy.PoolStats {
	out := []strategy.PoolStats{
		pg.PoolStatsOf("app", s.pools[0], &s.conns[0]),
		pg.PoolStatsOf("reader", s.pools[1], &s.conns[1]),
	}
	if s.workers != nil && s.citus.Load() {
		out = append(out, s.workers.stats())
	}
	return out
}

var _ strategy.PoolStatsReporter = (*Server)(nil)
