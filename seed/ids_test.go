package seed_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"tenancy/configs"
	"tenancy/seed"
	"tenancy/strategy"
)

// seedStep is one seed run of a test's sequence of runs.
type seedStep struct {
	accounts     int
	workers      int
	rollback     bool
	skipExisting bool
	reset        bool
}

// Ids depend on the options alone: whatever the number of workers, and
// whichever path loads the accounts (singleschema's one transaction into
// empty tables, or one transaction per account, as multidb and multischema
// always do and singleschema does into tables with rows), every table's
// rows have the
// ids, and every other column, of a fresh seed on one worker; tenant-i has
// id i+1; and the next ordinary insert gets the next id.
func TestSeedIDsDependOnlyOnTheOptions(t *testing.T) {
	t.Parallel()
	// Default sizes, so accounts take different times to generate and
	// workers finish out of order.
	const single, multi = 20, 6
	tests := []struct {
		name     string
		strategy string
		steps    []seedStep
	}{
		{"bulk load, 8 workers", strategy.SingleSchema, []seedStep{{accounts: single, workers: 8}}},
		{"bulk load rolled back first", strategy.SingleSchema, []seedStep{{accounts: single, workers: 8, rollback: true}, {accounts: single, workers: 8}}},
		{"per-account load finishing with --skip-existing", strategy.SingleSchema, []seedStep{{accounts: 5, workers: 8}, {accounts: single, workers: 8, skipExisting: true}}},
		{"8 workers", strategy.MultiDB, []seedStep{{accounts: multi, workers: 8}}},
		{"rolled back first", strategy.MultiDB, []seedStep{{accounts: multi, workers: 8, rollback: true}, {accounts: multi, workers: 8}}},
		{"finishing with --skip-existing", strategy.MultiDB, []seedStep{{accounts: 2, workers: 8}, {accounts: multi, workers: 8, skipExisting: true}}},
		{"seeded again after --reset", strategy.MultiDB, []seedStep{{accounts: multi, workers: 8}, {accounts: multi, workers: 8, reset: true}}},
		{"8 workers", strategy.MultiSchema, []seedStep{{accounts: multi, workers: 8}}},
		{"rolled back first", strategy.MultiSchema, []seedStep{{accounts: multi, workers: 8, rollback: true}, {accounts: multi, workers: 8}}},
		{"finishing with --skip-existing", strategy.MultiSchema, []seedStep{{accounts: 2, workers: 8}, {accounts: multi, workers: 8, skipExisting: true}}},
		{"seeded again after --reset", strategy.MultiSchema, []seedStep{{accounts: multi, workers: 8}, {accounts: multi, workers: 8, reset: true}}},
	}
	// The reference: a fresh seed on one worker, one account after another.
	want := map[string]string{}
	for _, tt := range []struct {
		strategy string
		accounts int
	}{{strategy.SingleSchema, single}, {strategy.MultiDB, multi}, {strategy.MultiSchema, multi}} {
		d := setUpWith(t, tt.strategy, map[string]string{"MULTIDB_COUNT": strconv.Itoa(multi)}, nil)
		runSteps(t, d, []seedStep{{accounts: tt.accounts, workers: 1}})
		dbs := accountDBs(t, d.cfg, tt.accounts)
		want[tt.strategy] = deploymentDump(t, dbs)
		checkAccountIDs(t, dbs)
		checkNextInserts(t, tt.strategy, dbs)
	}
	for _, tt := range tests {
		t.Run(tt.strategy+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			d := setUpWith(t, tt.strategy, map[string]string{"MULTIDB_COUNT": strconv.Itoa(multi)}, nil)
			runSteps(t, d, tt.steps)
			dbs := accountDBs(t, d.cfg, tt.steps[len(tt.steps)-1].accounts)
			if got := deploymentDump(t, dbs); got != want[tt.strategy] {
				t.Errorf("rows differ from a fresh seed on one worker:\n%s", firstDifference(got, want[tt.strategy]))
			}
			checkAccountIDs(t, dbs)
			checkNextInserts(t, tt.strategy, dbs)
		})
	}
}

func runSteps(t *testing.T, d deployment, steps []seedStep) {
	t.Helper()
	for _, st := range steps {
		o := seed.DefaultOptions()
		o.Accounts, o.Workers = st.accounts, st.workers
		o.Rollback, o.SkipExisting, o.Reset = st.rollback, st.skipExisting, st.reset
		if _, err := d.seeder.Run(context.Background(), o); err != nil {
			t.Fatalf("seed %+v: %v", st, err)
		}
	}
}

// accountDBs returns dbOf each of the first n accounts: one pool shared by
// all in singleschema (many parallel tests each holding a connection per
// account would exhaust the server's connections), one per tenant database
// in multidb, one per tenant schema in multischema.
func accountDBs(t *testing.T, cfg configs.Config, n int) []*sql.DB {
	t.Helper()
	dbs := make([]*sql.DB, n)
	for i := range dbs {
		if i == 0 || cfg.Strategy.Strategy != strategy.SingleSchema {
			dbs[i] = dbOf(t, cfg, i)
		} else {
			dbs[i] = dbs[0]
		}
	}
	return dbs
}

// deploymentDump is every column of every row of every table, in id order:
// of the one database (singleschema), or of each tenant database in turn.
func deploymentDump(t *testing.T, dbs []*sql.DB) string {
	t.Helper()
	var b strings.Builder
	for i, db := range dbs {
		if i > 0 && db == dbs[0] {
			break // singleschema: one database
		}
		fmt.Fprintf(&b, "=== database of %s\n%s", strategy.Slug(i), tableDump(t, db))
	}
	return b.String()
}

// firstDifference shows the first line where got and want part.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got: %.300s\nwant: %.300s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}

// checkAccountIDs checks that tenant-i has id i+1.
func checkAccountIDs(t *testing.T, dbs []*sql.DB) {
	t.Helper()
	for i, db := range dbs {
		slug := strategy.Slug(i)
		var id int64
		if err := db.QueryRow(`SELECT id FROM accounts WHERE slug = $1`, slug).Scan(&id); err != nil {
			t.Fatalf("id of %s: %v", slug, err)
		}
		if id != int64(i)+1 {
			t.Errorf("%s has id %d, want %d", slug, id, i+1)
		}
	}
}

// insert is a statement that adds a row to table and returns its id.
type insert struct{ table, sql string }

// nextInserts add one row to each table of strategyName the way the
// application would, with the id left to the table.
func nextInserts(strategyName string) []insert {
	if strategyName == strategy.SingleSchema {
		return []insert{
			{"accounts", `INSERT INTO accounts (slug, name) VALUES ('after-seed', 'After seed') RETURNING id`},
			{"users", `INSERT INTO users (account_id, email, first_name, last_name, password, date_joined)
			SELECT min(id), 'after-seed@example.com', 'After', 'Seed', '', now() FROM accounts RETURNING id`},
			{"projects", `INSERT INTO projects (account_id, name) SELECT min(id), 'After seed' FROM accounts RETURNING id`},
			{"tasks", `INSERT INTO tasks (account_id, project_id, name) SELECT account_id, id, 'After seed' FROM projects ORDER BY id LIMIT 1 RETURNING id`},
			{"subtasks", `INSERT INTO subtasks (account_id, task_id, name) SELECT account_id, id, 'After seed' FROM tasks ORDER BY id LIMIT 1 RETURNING id`},
		}
	}
	// A tenant database holds one account (a unique index on true), so a
	// second one is not an ordinary insert: this is the id it would get.
	account := `SELECT nextval(pg_get_serial_sequence('accounts', 'id'))`
	if strategyName == strategy.MultiSchema {
		// Every tenant schema shares public.accounts, checked once per
		// schema: read the id the next account would get without taking it.
		account = `SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('accounts', 'id')::regclass), 0) + 1`
	}
	return []insert{
		{"accounts", account},
		{"users", `INSERT INTO users (account_id, email, first_name, last_name, password, date_joined)
			SELECT min(id), 'after-seed@example.com', 'After', 'Seed', '', now() FROM accounts RETURNING id`},
		{"projects", `INSERT INTO projects (account_id, name) SELECT min(id), 'After seed' FROM accounts RETURNING id`},
		{"tasks", `INSERT INTO tasks (project_id, name) SELECT id, 'After seed' FROM projects ORDER BY id LIMIT 1 RETURNING id`},
		{"subtasks", `INSERT INTO subtasks (task_id, name) SELECT id, 'After seed' FROM tasks ORDER BY id LIMIT 1 RETURNING id`},
	}
}

// checkNextInserts checks that after seeding, an insert that leaves the id
// to the table gets the one after the highest (no collision, no gap), in
// each database the seed wrote to.
func checkNextInserts(t *testing.T, strategyName string, dbs []*sql.DB) {
	t.Helper()
	for i, db := range dbs {
		if i > 0 && db == dbs[0] {
			break // singleschema: one database
		}
		highest := map[string]int64{}
		for _, ins := range nextInserts(strategyName) {
			var h int64
			if err := db.QueryRow(`SELECT coalesce(max(id), 0) FROM ` + ins.table).Scan(&h); err != nil {
				t.Fatal(err)
			}
			highest[ins.table] = h
		}
		for _, ins := range nextInserts(strategyName) {
			var id int64
			if err := db.QueryRow(ins.sql).Scan(&id); err != nil {
				t.Errorf("database of tenant-%d: insert into %s after seeding: %v", i, ins.table, err)
				continue
			}
			if id != highest[ins.table]+1 {
				t.Errorf("database of tenant-%d: insert into %s after seeding got id %d, want %d (one past the highest seeded)", i, ins.table, id, highest[ins.table]+1)
			}
		}
	}
}
