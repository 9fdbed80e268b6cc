package pg

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tenancy/internal/pgtest"
)

// TestConnCounts: a counted pool counts what PostgreSQL sees, the
// connections of its application_name in pg_stat_activity, through
// connections held, idle ones dropped and the pool closed; a failed login
// is not a connection; and the driver's connection is still pgx's.
func TestConnCounts(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	ctx := context.Background()
	app := pgtest.UniqueName("tt_counted")
	var counts ConnCounts
	pool, err := OpenCountedPool(pgtest.DSN("", "", "postgres")+"&application_name="+app, 3, 3, &counts)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	admin := pgtest.Admin(t, "postgres")
	check := func(step string, opened, closed int64) {
		t.Helper()
		// A backend leaves pg_stat_activity a moment after its client
		// hangs up: the server's count is waited for, ours is not.
		var server int64
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&server); err != nil {
				t.Fatal(err)
			}
			if server == opened-closed || time.Now().After(deadline) {
				break
			}
		}
		if counts.Opened() != opened || counts.Closed() != closed || server != opened-closed {
			t.Errorf("%s: opened %d, closed %d, %d on the server; want %d, %d, %d", step, counts.Opened(), counts.Closed(), server, opened, closed, opened-closed)
		}
		st := PoolStatsOf("p", pool, &counts)
		if st.Opened != counts.Opened() || st.Closed != counts.Closed() || int64(st.Open) != server {
			t.Errorf("%s: PoolStatsOf = %+v, want opened %d, closed %d, %d open", step, st, counts.Opened(), counts.Closed(), server)
		}
	}
	check("before use", 0, 0)

	var held []*sql.Conn
	for range 3 {
		c, err := pool.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	check("3 held", 3, 0)
	if st := PoolStatsOf("p", pool, &counts); st.InUse != 3 || st.Idle != 0 {
		t.Errorf("3 held: in use %d, idle %d; want 3, 0", st.InUse, st.Idle)
	}
	for _, c := range held {
		c.Close()
	}
	pool.SetMaxIdleConns(1) // closes the other two now
	check("2 idle dropped", 3, 2)

	// The driver's connection is pgx's, as WithPgxConn needs, and the
	// socket wrapped under it carries queries as before.
	err = WithPgxConn(ctx, pool, func(c *pgx.Conn) error {
		var one int
		return c.QueryRow(ctx, "SELECT 1").Scan(&one)
	})
	if err != nil {
		t.Errorf("WithPgxConn on a counted pool: %v", err)
	}
	check("reused", 3, 2)

	pool.Close()
	check("pool closed", 3, 3)

	var refused ConnCounts
	nobody, err := OpenCountedPool(pgtest.DSN(pgtest.UniqueName("tt_nobody"), "", "postgres"), 1, 1, &refused)
	if err != nil {
		t.Fatal(err)
	}
	defer nobody.Close()
	if err := nobody.PingContext(ctx); err == nil {
		t.Fatal("a role that does not exist logged in")
	}
	if refused.Opened() != 0 || refused.Closed() != 0 {
		t.Errorf("after a refused login: opened %d, closed %d; want 0, 0", refused.Opened(), refused.Closed())
	}
}
