package pg

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// Sessions is how the connections of the pools opened with it
// (OpenCountedPoolWith) begin their sessions, and lets a server change
// that while it runs: after Renew, each connection opened before is
// closed instead of being reused (database/sql resets a connection before
// each reuse, and a connection of an older generation fails the reset, so
// the pool opens another), and new ones run the new setup statements.
// A connection's generation is a number it carries from its login, so
// telling a stale one costs no query. One Sessions may serve several
// pools; the zero value runs no statement.
type Sessions struct {
	current atomic.Pointer[generation]
}

// generation is one setting of Sessions: its number and the statements a
// new connection runs first.
type generation struct {
	n     int64
	setup []string
}

// sessionKey is where a connection keeps the number of its generation
// (pgconn's CustomData, private to the connection).
const sessionKey = "tenancy.sessions"

// Renew makes every connection opened from now on run setup first, and
// retires the connections opened before.
func (s *Sessions) Renew(setup ...string) {
	for {
		old := s.current.Load()
		next := &generation{n: 1, setup: setup}
		if old != nil {
			next.n = old.n + 1
		}
		if s.current.CompareAndSwap(old, next) {
			return
		}
	}
}

// load is the current generation (number 0, no statements, before any
// Renew).
func (s *Sessions) load() *generation {
	if g := s.current.Load(); g != nil {
		return g
	}
	return &generation{}
}

// begin runs the current setup on a new connection and marks it with the
// generation it belongs to.
func (s *Sessions) begin(ctx context.Context, c *pgx.Conn) error {
	g := s.load()
	for _, stmt := range g.setup {
		if _, err := c.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("begin the session (%s): %w", stmt, err)
		}
	}
	c.PgConn().CustomData()[sessionKey] = g.n
	return nil
}

// reset refuses a connection of an older generation than the current one,
// which database/sql then closes.
func (s *Sessions) reset(_ context.Context, c *pgx.Conn) error {
	if n, _ := c.PgConn().CustomData()[sessionKey].(int64); n != s.load().n {
		return driver.ErrBadConn
	}
	return nil
}
