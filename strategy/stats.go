package strategy

import "time"

// PoolStatsReporter is what a Strategy implements, optionally, to show its
// connection pools to monitoring (the server's /metrics). It is apart from
// Strategy so that another gorm application's wrapper, or a test's fake,
// need not implement it.
type PoolStatsReporter interface {
	// PoolStats describes each of the server's pools as it is now. It is
	// called at every scrape, so it must be cheap and safe to call from
	// any goroutine, and the same pools must come back, by name, each time.
	PoolStats() []PoolStats
}

// PoolStats is one connection pool of a server, or a set of them added up
// (multidb's tenant pools). The counts are totals since the server
// opened, and never go down.
type PoolStats struct {
	// Pool names the pool within its strategy, e.g. "app" or "tenants".
	Pool string
	// Open is the connections open now: Idle plus InUse, and those being
	// opened.
	Open, Idle, InUse int
	// WaitCount is how many times a caller waited for a connection because
	// the pool had none to give; WaitDuration is the time they waited in
	// all.
	WaitCount    int64
	WaitDuration time.Duration
	// Opened and Closed count the connections made to PostgreSQL and
	// closed again, for any reason: idle too long, too old, broken, or
	// their pool closed.
	Opened, Closed int64
	// Evictions counts the pools a pool policy closed to make room for
	// others (multidb's tenant pools); zero where there is no such
	// policy.
	Evictions int64
}
