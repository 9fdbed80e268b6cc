package citustest_test

import (
	"database/sql"
	"testing"
	"time"

	"tenancy/internal/citustest"
	"tenancy/internal/pgtest"
)

// TestClusterDistributesAndGrows: a table distributed in a database made
// by CreateDatabase has its shards on the workers only, and a worker added
// later is registered in that database.
func TestClusterDistributesAndGrows(t *testing.T) {
	start := time.Now()
	c := citustest.New(t, 2)
	t.Logf("coordinator and 2 workers started in %s", time.Since(start).Round(time.Millisecond))
	db := pgtest.UniqueName("tt")
	c.MustCreateDatabase(t, db)
	coord, err := sql.Open("pgx", citustest.DSN(c.Coordinator, db))
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	for _, s := range []string{
		"CREATE TABLE items (account_id bigint NOT NULL, id bigint NOT NULL, PRIMARY KEY (account_id, id))",
		"SELECT create_distributed_table('items', 'account_id')",
		"INSERT INTO items SELECT a, i FROM generate_series(1, 20) a, generate_series(1, 5) i",
	} {
		if _, err := coord.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	workerPorts := func() map[int]bool {
		rows, err := coord.Query("SELECT nodeport FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int]bool{}
		for rows.Next() {
			var p int
			if err := rows.Scan(&p); err != nil {
				t.Fatal(err)
			}
			out[p] = true
		}
		return out
	}
	if got := workerPorts(); len(got) != 2 {
		t.Fatalf("workers in pg_dist_node = %v, want the 2 started", got)
	}
	// Every row is on a worker, none on the coordinator.
	var onWorkers int
	for _, w := range c.Workers() {
		var n int
		err := coord.QueryRow(`SELECT coalesce(sum(result::int), 0) FROM run_command_on_placements('items', 'SELECT count(*) FROM %s')
			WHERE nodeport = $1`, w.Port).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		onWorkers += n
	}
	if onWorkers != 100 {
		t.Errorf("rows on the workers = %d, want 100", onWorkers)
	}
	var onCoordinator int
	err = coord.QueryRow(`SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
		WHERE s.logicalrelid = 'items'::regclass AND p.groupid = 0`).Scan(&onCoordinator)
	if err != nil {
		t.Fatal(err)
	}
	if onCoordinator != 0 {
		t.Errorf("shards of items on the coordinator = %d, want 0", onCoordinator)
	}
	w := c.AddWorker(t)
	if got := workerPorts(); len(got) != 3 || !got[w.Port] {
		t.Errorf("workers after AddWorker = %v, want 3 with port %d", got, w.Port)
	}
}
