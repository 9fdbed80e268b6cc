package singleschema_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/strategytest"
)

// testShardGrantsNeverMissing: the app role's INSERT (id) on the shards
// (which Citus fills in on the coordinator) is there from the moment the
// shards are, and stays there through a migrate:
//
//   - setup distributes the tables with the grant hook already on every
//     node, so each shard has the grant as Citus creates it, and setup's
//     last look for shards without it finds none to grant (a hook
//     installed after the distribution left every shard without it until
//     that step: a server waiting for the distribution refused inserts
//     meanwhile);
//   - a migrate, whose REVOKE ALL reaches the shards, makes the grant
//     again in the same transaction: inserts through the server while it
//     runs never fail (they did, with "permission denied for table
//     subtasks_<n>", for the seconds between that REVOKE and grants made
//     shard by shard after it).
func testShardGrantsNeverMissing(t *testing.T, h strategytest.Harness) {
	ctx := context.Background()
	opts := strategytest.Options(t, h.Name)
	admin := strategytest.OpenAdmin(t, h, opts)
	rep, err := admin.Setup(ctx, nil)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if got := rep.Databases[0].Repaired; len(got) != 0 {
		t.Errorf("setup made grants the hook should have made as the shards were created: %q", got)
	}
	db := pgtest.Admin(t, opts.Database)
	with, without := shardIDGrants(t, db, opts.AppUser)
	if with == 0 || without != 0 {
		t.Errorf("after setup: %d shards let %s insert ids, %d do not; want all", with, opts.AppUser, without)
	}

	s, err := h.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	acct := strategytest.AddTenantWithTasks(t, admin, s, "tenant-0", 1, 0)
	tasks, err := s.ListTasks(strategytest.TenantCtx(acct), 1)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("ListTasks: %v, %v", tasks, err)
	}
	// Writers insert until the migrate is done, and at least once after
	// it began.
	done := make(chan struct{})
	var mu sync.Mutex
	var failures []error
	inserts := 0
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := s.CreateSubtask(strategytest.TenantCtx(acct), strategy.NewSubtask{TaskID: tasks[0].ID, Name: fmt.Sprintf("during migrate %d.%d", w, i)})
				mu.Lock()
				inserts++
				if err != nil {
					failures = append(failures, err)
				}
				mu.Unlock()
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	start := time.Now()
	_, err = admin.Migrate(ctx, nil, strategy.MigrateOptions{})
	took := time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if inserts < 2 {
		t.Errorf("%d inserts during the migrate (%s), want some", inserts, took)
	}
	for _, err := range failures {
		t.Errorf("an insert during the migrate (%s) failed: %v", took, err)
	}
	if with, without := shardIDGrants(t, db, opts.AppUser); with == 0 || without != 0 {
		t.Errorf("after migrate: %d shards let %s insert ids, %d do not; want all", with, opts.AppUser, without)
	}
	// The shards only: not the tables, on the coordinator nor in the
	// workers' copies of them (ids stay the database's, 00005).
	rows, err := db.Query(`SELECT nodeid, success, result FROM run_command_on_all_nodes($1)`,
		fmt.Sprintf(`SELECT coalesce(string_agg(t, ' '), '') FROM unnest(ARRAY['users', 'projects', 'tasks', 'subtasks']) t
			WHERE has_column_privilege(%s, ('public.' || t)::regclass, 'id', 'INSERT')`, pg.QuoteLiteral(opts.AppUser)))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var node int
		var ok bool
		var result string
		if err := rows.Scan(&node, &ok, &result); err != nil {
			t.Fatal(err)
		}
		if !ok || result != "" {
			t.Errorf("after migrate, node %d: %s may insert the ids of the tables %q themselves (ok %v), want none", node, opts.AppUser, result, ok)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d inserts during a migrate of %s, %d failed", inserts, took, len(failures))
}

// shardIDGrants counts the shards, of every table whose ids Citus draws on
// the coordinator, that let role insert their id column and those that do
// not, asked where each shard is.
func shardIDGrants(t *testing.T, db *sql.DB, role string) (with, without int) {
	t.Helper()
	for _, table := range pg.ShardGrantTables() {
		var w, wo int
		err := db.QueryRow(`SELECT count(*) FILTER (WHERE success AND result = 't'), count(*) FILTER (WHERE NOT success OR result <> 't')
			FROM run_command_on_placements($1, $2)`,
			"public."+table, fmt.Sprintf(`SELECT has_column_privilege(%s, '%%s', 'id', 'INSERT')`, pg.QuoteLiteral(role))).Scan(&w, &wo)
		if err != nil {
			t.Fatalf("read the grants on the shards of %s: %v", table, err)
		}
		with, without = with+w, without+wo
	}
	return with, without
}
