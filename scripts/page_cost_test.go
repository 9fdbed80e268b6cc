package scripts

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/singleschema"
	"tenancy/strategy/strategytest"
)

// TestPageCostRuns runs page-cost.sh briefly against a seeded singleschema
// deployment on plain PostgreSQL: every row it prints is a rate above
// zero, so the statements it copies from the server still run against
// today's schema (a renamed column makes pgbench fail and this go red).
func TestPageCostRuns(t *testing.T) {
	opts := seededSingleSchema(t)
	out := runOn(t, opts, "page-cost.sh", "DURATION=1", "TENANTS=3", "CLIENTS=2")
	tests := []string{
		"page read as the server sends it",
		"the page statement alone",
		"subtasks only, one table",
		"subtasks only, as the app role in a block",
		"subtasks \\+ tasks \\(",
		"subtasks \\+ tasks \\+ projects",
	}
	for _, label := range tests {
		if n := rate(out, label+`.*?\s(\d+)\n`); n <= 0 {
			t.Errorf("%q: %d per second, want more than 0, in:\n%s", label, n, out)
		}
	}
}

// TestSchemaABRuns runs schema-ab.sh for one short round: each schema it
// names gives a page and a write rate above zero (so every part it undoes
// and redoes is found in the migration and applies), and the schema is as
// migration 00009 left it afterwards.
func TestSchemaABRuns(t *testing.T) {
	opts := seededSingleSchema(t)
	out := runOn(t, opts, "schema-ab.sh", "DURATION=1", "ROUNDS=1", "CLIENTS=2")
	for _, schema := range []string{"00009 as it is", "without 00009's policy", "without 00009's keys", "without 00009's trigger"} {
		re := regexp.QuoteMeta(schema) + `\s+(\d+)\s+(\d+)\n`
		m := regexp.MustCompile(re).FindSubmatch(out)
		if m == nil {
			t.Errorf("no rates for %q in:\n%s", schema, out)
			continue
		}
		for _, v := range m[1:] {
			if n, _ := strconv.Atoi(string(v)); n <= 0 {
				t.Errorf("%q: a rate of %d, want more than 0, in:\n%s", schema, n, out)
			}
		}
	}
	db := pgtest.Admin(t, opts.Database)
	var key, policy string
	var perTenant bool
	if err := db.QueryRow(`SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'subtasks_pkey'`).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'subtasks'::regclass`).Scan(&policy); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT position('FOR i IN' in prosrc) > 0 FROM pg_proc WHERE proname = 'subtask_counts_apply'`).Scan(&perTenant); err != nil {
		t.Fatal(err)
	}
	if key != "PRIMARY KEY (account_id, id)" || policy != "(account_id = app_current_tenant())" || !perTenant {
		t.Errorf("after the run: key %q, policy %q, count trigger a tenant at a time %v; want 00009's", key, policy, perTenant)
	}
}

// seededSingleSchema sets up a singleschema deployment of three seeded
// accounts, dropped when the test ends.
func seededSingleSchema(t *testing.T) strategy.Options {
	t.Helper()
	opts := strategytest.Options(t, strategy.SingleSchema)
	opts.AppPassword = "scripts-app-password"
	ctx := context.Background()
	admin, err := singleschema.NewAdmin(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatalf("setup: %v", err)
	}
	so := seed.DefaultOptions()
	so.Accounts = 3
	seeder, err := seed.NewSeeder(admin, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seeder.Run(ctx, so); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return opts
}

// runOn runs a script of this directory against opts' database, with
// extra variables, and returns what it printed.
func runOn(t *testing.T, opts strategy.Options, script string, extra ...string) []byte {
	t.Helper()
	cmd := exec.Command("bash", script)
	cmd.Env = append(append(os.Environ(),
		"PGHOST="+opts.Host, "PGPORT="+strconv.Itoa(opts.Port), "PGUSER="+opts.AdminUser,
		"PGPASSWORD="+opts.AdminPassword, "PGDATABASE="+opts.Database,
		"APP_DB_USER="+opts.AppUser, "APP_DB_PASSWORD="+opts.AppPassword), extra...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

// rate is the number re's first group matches in out, or 0.
func rate(out []byte, re string) int {
	m := regexp.MustCompile(re).FindSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
