package localcluster_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"tenancy/internal/localcluster"
	"tenancy/internal/pgtest"
)

// TestCitusStartsAndStops starts a coordinator and two workers, makes a
// database on them, and checks what compare relies on: the workers are
// registered in it, a distributed table spreads over them, and Stop ends
// every postmaster and removes every directory.
func TestCitusStartsAndStops(t *testing.T) {
	if err := localcluster.CitusInstalled(); err != nil {
		pgtest.Need(t, "localcluster: "+err.Error()+"; `make citus` installs it")
	}
	// The nodes go in the temporary directory: there, the one pgtest's
	// throwaway clusters use (memory, when there is room).
	if d := pgtest.ScratchDir(); d != "" {
		t.Setenv("TMPDIR", d)
	}
	ctx := context.Background()
	c, err := localcluster.StartCitus(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if err := c.CreateDatabase(ctx, "tt_localcluster"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.Coordinator.DSN("tt_localcluster"))
	if err != nil {
		t.Fatal(err)
	}
	var workers, placed int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM citus_get_active_worker_nodes()").Scan(&workers)
	if err == nil {
		_, err = conn.Exec(ctx, "CREATE TABLE t (k bigint); SELECT create_distributed_table('t', 'k')")
	}
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 't'::regclass").Scan(&placed)
	}
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if workers != 2 || placed != 2 {
		t.Errorf("active workers %d, nodes holding shards %d; want 2 and 2", workers, placed)
	}

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, n := range c.Nodes() {
		// Signal 0 checks the process is there without touching it.
		if err := syscall.Kill(n.PID(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node on port %d: postmaster %d still runs after Stop (%v)", n.Port, n.PID(), err)
		}
		if _, err := os.Stat(n.Dir()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("node on port %d: %s left behind (%v)", n.Port, n.Dir(), err)
		}
	}
	if err := c.Stop(); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
}
