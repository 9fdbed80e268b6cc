package pg

import (
	"context"
	"crypto/tls"
	"database/sql"
	"net"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"tenancy/strategy"
)

// ConnCounts counts the connections to PostgreSQL made and closed by the
// pools opened with it (OpenCountedPool), for monitoring. database/sql's
// own figures cannot say this: its DBStats have no count of connections
// opened, count as closed only those it dropped for their age or idleness
// (not broken ones, nor those of a closed pool), and are lost with their
// pool, where multidb opens and closes tenant pools all the time. One
// ConnCounts may serve any number of pools; its counts only grow.
type ConnCounts struct {
	opened, closed atomic.Int64
}

// Opened is how many connections logged in.
func (c *ConnCounts) Opened() int64 { return c.opened.Load() }

// Closed is how many of those have been closed since, for any reason.
func (c *ConnCounts) Closed() int64 { return c.closed.Load() }

// OpenCountedPool is OpenPool with each connection counted in counts: as
// opened once it has logged in, as closed when its socket is. Connections
// that fail to log in, and the short ones pgx makes to cancel a query,
// are not counted.
func OpenCountedPool(dsn string, maxOpen, maxIdle int, counts *ConnCounts) (*sql.DB, error) {
	return OpenCountedPoolWith(dsn, maxOpen, maxIdle, counts, nil)
}

// OpenCountedPoolWith is OpenCountedPool whose connections begin their
// sessions as sessions says (none: as the role's settings alone make
// them).
func OpenCountedPoolWith(dsn string, maxOpen, maxIdle int, counts *ConnCounts, sessions *Sessions) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	// The socket is wrapped, not the connection pgx hands database/sql:
	// the driver's connection is what the strategies unwrap to reach pgx
	// (WithPgxConn), and what pgx sees after TLS must stay a *tls.Conn
	// for SCRAM's channel binding. So the socket counts itself closed,
	// and is marked as a real connection once the login succeeds.
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countedConn{Conn: conn, counts: counts}, nil
	}
	afterConnect := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, c *pgconn.PgConn) error {
		if afterConnect != nil {
			if err := afterConnect(ctx, c); err != nil {
				return err
			}
		}
		conn := c.Conn()
		if t, ok := conn.(*tls.Conn); ok {
			conn = t.NetConn()
		}
		if cc, ok := conn.(*countedConn); ok {
			cc.loggedIn()
		}
		return nil
	}
	var opts []stdlib.OptionOpenDB
	if sessions != nil {
		opts = append(opts, stdlib.OptionAfterConnect(sessions.begin), stdlib.OptionResetSession(sessions.reset))
	}
	db := stdlib.OpenDB(*cfg, opts...)
	setPoolLimits(db, maxOpen, maxIdle)
	return db, nil
}

// countedConn is a socket to PostgreSQL that counts itself in counts.
type countedConn struct {
	net.Conn
	counts *ConnCounts
	state  atomic.Int32 // dialled, then loggedIn, then closed
}

const (
	dialled int32 = iota
	loggedIn
	closed
)

func (c *countedConn) loggedIn() {
	if c.state.CompareAndSwap(dialled, loggedIn) {
		c.counts.opened.Add(1)
	}
}

func (c *countedConn) Close() error {
	if c.state.Swap(closed) == loggedIn {
		c.counts.closed.Add(1)
	}
	return c.Conn.Close()
}

// PoolStatsOf is what pool, named name, reports to monitoring: its
// connections now and the waits for one, as database/sql counts them, and
// the connections it opened and closed, from counts.
func PoolStatsOf(name string, pool *sql.DB, counts *ConnCounts) strategy.PoolStats {
	s := pool.Stats()
	return strategy.PoolStats{
		Pool: name,
		Open: s.OpenConnections, Idle: s.Idle, InUse: s.InUse,
		WaitCount: s.WaitCount, WaitDuration: s.WaitDuration,
		Opened: counts.Opened(), Closed: counts.Closed(),
	}
}
