package singleschema_test

// singleschema on Citus: a coordinator and two workers of the test's own
// (internal/citustest), the shared schema distributed by setup, and the
// behaviour every strategy promises (the conformance suite, with its
// 10,000-request leak test and hostile slugs) checked there.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"tenancy/internal/citustest"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/singleschema"
	"tenancy/strategy/singleschema/migrations"
	"tenancy/strategy/strategytest"
)

// onCitus is singleschema's harness with each deployment's database made
// on every node of c first, as a Citus deployment needs (Citus creates no
// database on the workers); setup then finds it, adopts it and distributes
// the tables.
func onCitus(c *citustest.Cluster) strategytest.Harness {
	h := singleschema.Harness()
	open := h.OpenAdmin
	h.OpenAdmin = func(o strategy.Options) (strategy.Admin, error) {
		if err := c.CreateDatabase(context.Background(), o.Database); err != nil {
			return nil, err
		}
		return open(o)
	}
	h.TenantTx = func(_ strategy.Options, a models.Account) []string {
		return []string{fmt.Sprintf("SELECT app_set_tenant(%d)", a.ID)}
	}
	h.CountTriggerSite = shardSite
	return h
}

// shardSite is the worker that holds tenant a's shard of subtasks, where
// its count triggers run: a session there that makes temporary objects
// is the one the triggers run in when it writes the tenant's rows (Citus
// runs a statement on a shard of the worker it is sent to in the same
// backend), as a session on the coordinator is not.
func shardSite(t testing.TB, opts strategy.Options, a models.Account) strategytest.TriggerSite {
	t.Helper()
	worker := shardWorker(t, opts, a)
	return strategytest.TriggerSite{
		Open: func(t testing.TB, user string) *sql.DB {
			t.Helper()
			if user == "" {
				user = opts.AdminUser
			}
			return openOnNode(t, worker, user, opts.Database)
		},
		Begin: []string{"SET LOCAL citus.enable_ddl_propagation = off"},
	}
}

// shardWorker is the address (host:port) of the worker that holds tenant
// a's shard of subtasks.
func shardWorker(t testing.TB, opts strategy.Options, a models.Account) string {
	t.Helper()
	var host string
	var port int
	err := pgtest.Admin(t, opts.Database).QueryRow(`SELECT n.nodename, n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
		WHERE p.shardid = get_shard_id_for_distribution_column('public.subtasks', $1::bigint)`, int64(a.ID)).Scan(&host, &port)
	if err != nil {
		t.Fatalf("find the worker with tenant %s's subtasks: %v", a.Slug, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// openOnNode connects to database on one node of the cluster (host:port),
// as user, who needs no password there (the test clusters trust local
// connections).
func openOnNode(t testing.TB, node, user, database string) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "postgres", User: url.User(user), Host: node, Path: "/" + database, RawQuery: "sslmode=disable"}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestOnCitus runs singleschema on a Citus cluster. It points the tests'
// connection variables at the coordinator (citustest.UseCoordinator), so
// it must not run in parallel with other tests of this package: it does
// not call t.Parallel, and those that do run after it.
func TestOnCitus(t *testing.T) {
	c := citustest.New(t, 2)
	c.UseCoordinator(t)
	h := onCitus(c)

	t.Run("TablesAreDistributed", func(t *testing.T) { testTablesAreDistributed(t, h) })
	t.Run("TenantSettingMustReachTheWorkers", func(t *testing.T) { testTenantSettingMustReachTheWorkers(t, h) })
	t.Run("AllTenantsPages", func(t *testing.T) { singleschema.AllTenantsPagesCoverEveryRowOnce(t, h) })
	t.Run("ServerWaitsForTheDistribution", func(t *testing.T) { testServerWaitsForTheDistribution(t, h) })
	t.Run("CheckFindsNothing", func(t *testing.T) { testCheckFindsNothing(t, h) })
	t.Run("CheckFindsOpenPolicies", func(t *testing.T) { testCheckFindsOpenPolicies(t, h) })
	t.Run("ReadsOnTheTenantsWorker", func(t *testing.T) { testReadsOnTheTenantsWorker(t, h) })
	t.Run("ShardGrantsNeverMissing", func(t *testing.T) { testShardGrantsNeverMissing(t, h) })
	t.Run("Conformance", func(t *testing.T) { strategytest.Run(t, h) })
}

// testCheckFindsNothing: tenancy check's audit passes a deployment that
// setup distributed (the coordinator's own TRUNCATE trigger and its
// function included), and still does after subtasks is truncated through
// the coordinator: the counts were emptied with it, so none is reported
// as drifted, as it would be without that trigger.
func testCheckFindsNothing(t *testing.T, h strategytest.Harness) {
	opts, admin, s := strategytest.Deploy(t, h)
	strategytest.AddTenant(t, admin, s, "tenant-0", 3)
	strategytest.AddTenant(t, admin, s, "tenant-1", 2)
	for _, step := range []struct {
		name string
		do   []string
	}{
		{"after setup", nil},
		{"after TRUNCATE subtasks", []string{"TRUNCATE subtasks"}},
	} {
		strategytest.MustExec(t, pgtest.Admin(t, opts.Database), step.do...)
		rep, err := audit.CheckSingleSchema(context.Background(), opts)
		if err != nil {
			t.Fatalf("%s: check: %v", step.name, err)
		}
		for _, f := range rep.Findings {
			t.Errorf("%s: check found %+v, want nothing", step.name, f)
		}
	}
}

// testCheckFindsOpenPolicies: tenancy check probes the policies for real
// on Citus too, where its reads and writes run on the workers: a policy
// that lets rows through is found. A probe refused there, or a tenant set
// the way Citus does not pass on (set_config), would see nothing and pass.
func testCheckFindsOpenPolicies(t *testing.T, h strategytest.Harness) {
	tests := []struct {
		name   string
		policy string
		want   audit.FindingKind
	}{
		{"open to all", "true", audit.FindingPolicyOpenWithoutTenant},
		{"open to the other tenants", "account_id <> app_current_tenant()", audit.FindingPolicyOpenToOtherTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, admin, s := strategytest.Deploy(t, h)
			strategytest.AddTenant(t, admin, s, "tenant-0", 3)
			strategytest.AddTenant(t, admin, s, "tenant-1", 2)
			strategytest.MustExec(t, pgtest.Admin(t, opts.Database),
				"ALTER POLICY tenant_isolation ON subtasks USING ("+tt.policy+")")
			rep, err := audit.CheckSingleSchema(context.Background(), opts)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			found := false
			for _, f := range rep.Findings {
				if f.Kind == tt.want && strings.Contains(f.Subject, "subtasks") {
					found = true
				}
			}
			if !found {
				t.Errorf("policy USING (%s) on subtasks: check found %+v, want %s on subtasks", tt.policy, rep.Findings, tt.want)
			}
		})
	}
}

// testServerWaitsForTheDistribution: a server that finds the schema
// current on a Citus database whose tables are not distributed yet (setup
// between its migration and the distribution: here the schema of the
// previous build, set up on the coordinator, is migrated by hand) tells
// tenants the deployment is being upgraded rather than serve them the
// single-node way, and serves them, from the workers, once setup has
// distributed the tables, without a restart.
func testServerWaitsForTheDistribution(t *testing.T, h strategytest.Harness) {
	ctx := context.Background()
	opts := strategytest.Options(t, h.Name)
	old := opts
	old.HoldBackMigrations = pg.CountFrom(migrations.FS(), "_distributable.sql")
	oldAdmin := strategytest.OpenAdmin(t, h, old)
	if _, err := oldAdmin.Setup(ctx, nil); err != nil {
		t.Fatalf("Setup of the previous build: %v", err)
	}
	oldServer, err := h.Open(ctx, old)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer oldServer.Close()
	a := strategytest.AddTenant(t, oldAdmin, oldServer, "tenant-0", 7)
	if err := pg.Migrate(ctx, pgtest.Admin(t, opts.Database), migrations.FS(), "", &strategy.DatabaseReport{}); err != nil {
		t.Fatalf("migrate without distributing: %v", err)
	}

	s, err := h.Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, err := s.ListSubtasks(strategytest.TenantCtx(a), 1, 10); !errors.Is(err, strategy.ErrTenantUpgrading) {
		t.Errorf("ListSubtasks with the tables not distributed yet: err = %v, want ErrTenantUpgrading", err)
	}
	if _, err := strategytest.OpenAdmin(t, h, opts).Setup(ctx, nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	page, err := s.ListSubtasks(strategytest.TenantCtx(a), 1, 10)
	if err != nil || page.Total != 7 || len(page.Rows) != 7 {
		t.Errorf("ListSubtasks once setup has distributed the tables = %d rows of %d (err %v), want 7 of 7", len(page.Rows), page.Total, err)
	}
}

// testTablesAreDistributed: setup makes accounts a reference table and the
// tenants' tables distributed by account_id, co-located, with their
// shards on the workers; a second setup changes nothing.
func testTablesAreDistributed(t *testing.T, h strategytest.Harness) {
	opts, admin, _ := strategytest.Deploy(t, h)
	if _, err := admin.Setup(context.Background(), nil); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	db := pgtest.Admin(t, opts.Database)
	rows, err := db.Query(`SELECT table_name::text, citus_table_type, coalesce(distribution_column, ''), colocation_id
		FROM citus_tables ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type table struct {
		kind, column string
		colocation   int
	}
	got := map[string]table{}
	for rows.Next() {
		var name string
		var tb table
		if err := rows.Scan(&name, &tb.kind, &tb.column, &tb.colocation); err != nil {
			t.Fatal(err)
		}
		got[name] = tb
	}
	if got["accounts"].kind != "reference" {
		t.Errorf("accounts is %q, want a reference table", got["accounts"].kind)
	}
	for _, name := range []string{"users", "projects", "tasks", "subtasks", "subtask_counts"} {
		tb := got[name]
		if tb.kind != "distributed" || tb.column != "account_id" || tb.colocation != got["users"].colocation {
			t.Errorf("%s is %+v, want distributed by account_id, co-located with users (%d)", name, tb, got["users"].colocation)
		}
	}
	var onCoordinator int
	if err := db.QueryRow(`SELECT count(*) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
		JOIN pg_dist_partition d USING (logicalrelid) WHERE p.groupid = 0 AND d.partmethod = 'h'`).Scan(&onCoordinator); err != nil {
		t.Fatal(err)
	}
	if onCoordinator != 0 {
		t.Errorf("%d shards of distributed tables on the coordinator, want 0", onCoordinator)
	}
}

// testTenantSettingMustReachTheWorkers: the tenant's rows are on the
// workers, so the tenant setting must reach them. Set as the server sets
// it, in a transaction block, the tenant sees exactly its own rows; set
// with set_config() (which Citus does not pass on) or as SET LOCAL without
// citus.propagate_set_commands, the workers see no tenant and row-level
// security gives nothing. A server that set its tenant either way would
// serve empty pages; this is the test that goes red if setTenant did.
func testTenantSettingMustReachTheWorkers(t *testing.T, h strategytest.Harness) {
	opts, admin, s := strategytest.Deploy(t, h)
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 7)
	strategytest.AddTenant(t, admin, s, "tenant-1", 5)
	app := pgtest.Open(t, opts.AppUser, opts.AppPassword, opts.Database)
	tests := []struct {
		name string
		set  []string
		want int
	}{
		{"app_set_tenant, as the server does", []string{fmt.Sprintf("SELECT app_set_tenant(%d)", a.ID)}, 7},
		{"SET LOCAL with propagation", []string{"SET LOCAL citus.propagate_set_commands = 'local'", fmt.Sprintf("SET LOCAL app.tenant_id = '%d'", a.ID)}, 7},
		{"set_config, as on plain PostgreSQL", []string{fmt.Sprintf("SELECT set_config('app.tenant_id', '%d', true)", a.ID)}, 0},
		{"SET LOCAL without propagation", []string{fmt.Sprintf("SET LOCAL app.tenant_id = '%d'", a.ID)}, 0},
	}
	for _, tt := range tests {
		got := countInTx(t, app, tt.set, "SELECT count(*) FROM subtasks")
		if got != tt.want {
			t.Errorf("%s: the tenant sees %d subtasks, want %d", tt.name, got, tt.want)
		}
	}
	// And the server itself, through its one-trip page read.
	page, err := s.ListSubtasks(strategytest.TenantCtx(a), 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 7 || len(page.Rows) != 7 {
		t.Errorf("ListSubtasks(tenant-0) = %d rows of %d, want 7 of 7", len(page.Rows), page.Total)
	}
}

// countInTx runs set, then query (a count), in one transaction on db, and
// rolls it back.
func countInTx(t *testing.T, db *sql.DB, set []string, query string) int {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	for _, s := range set {
		if _, err := tx.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	var n int
	if err := tx.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
