package singleschema_test

// Growing a Citus cluster while it serves: a third worker added and the
// shards rebalanced onto it, then the largest tenant isolated to a shard
// of its own, both under a load of tenant pages read through the server,
// every row checked. And the writes of the tenants whose shards were made
// afresh by the move or the split, which need the app role's INSERT (id)
// on the new shards (the grant hook, installShardGrantHook).

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tenancy/internal/citustest"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/strategytest"
)

// growAccounts are the small tenants seeded; one more, the largest, comes
// after them with some hundred times their subtasks.
const growAccounts = 200

// TestCitusGrowWhileServing: on a coordinator and two workers, with
// growAccounts small tenants and one large one, 4 clients read random
// pages of random tenants (a quarter of them the largest's) through the
// server while a third worker is added and the shards are rebalanced onto
// it, and while the largest tenant is isolated to a shard of its own. No
// request may fail and no row may be another tenant's, in any window;
// each window must have seen requests (the largest tenant's, during its
// isolation). After each step the tenants whose shards were made afresh
// write through the server (add a subtask, complete it): that goes red
// without the INSERT (id) grant on the new shards. It logs the figures
// docs/citus.md quotes.
//
// Like TestOnCitus it points the tests' connection variables at its
// coordinator, so it does not run in parallel.
func TestCitusGrowWhileServing(t *testing.T) {
	c := citustest.New(t, 2)
	c.UseCoordinator(t)
	h := onCitus(c)
	ctx := context.Background()
	opts := strategytest.Options(t, h.Name)
	opts.MaxConns = 8
	admin := strategytest.OpenAdmin(t, h, opts)
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatalf("setup: %v", err)
	}
	seedStart := time.Now()
	seedForGrowth(t, admin)
	seedTook := time.Since(seedStart)
	s, err := h.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	db := pgtest.Admin(t, opts.Database)
	tenants, owner := readTenants(t, db)
	largest := slices.MaxFunc(tenants, byCount)
	others := slices.DeleteFunc(slices.Clone(tenants), func(a growTenant) bool { return a.ID == largest.ID })
	if next := slices.MaxFunc(others, byCount); largest.subtasks < 10*next.subtasks {
		t.Fatalf("the largest tenant %s has %d subtasks, the next %d: not clearly the largest", largest.Slug, largest.subtasks, next.subtasks)
	}

	load := startPageLoad(s, tenants, largest, owner)
	defer load.stop()
	load.waitFor(t, "before", 200)

	// (a) A third worker, made ready as an operator would (its database
	// with the extension, registered on the coordinator), then a migrate
	// (which installs the shard grant hook on it), then the rebalance.
	load.enter("add worker")
	step := time.Now()
	w := c.AddWorker(t)
	// Before the migrate, tenancy check names the new node (no hook yet)
	// and the shards that lack the grant (here made so by hand, as a
	// shard moved onto a node without the hook would be); after it,
	// neither.
	strategytest.MustExec(t, db, fmt.Sprintf(`SELECT run_command_on_shards('public.tasks', 'REVOKE INSERT (id) ON %%s FROM %s')`, opts.AppUser))
	want := []string{fmt.Sprintf("Citus node 127.0.0.1:%d", w.Port), "Citus shards tasks shard "}
	if got := shardGrantFindings(t, opts); len(got) != len(want) || !strings.HasPrefix(got[0], want[0]) || !strings.HasPrefix(got[1], want[1]) {
		t.Errorf("tenancy check after adding a worker: %q, want findings about %q", got, want)
	}
	if _, err := admin.Migrate(ctx, nil, strategy.MigrateOptions{}); err != nil {
		t.Fatalf("migrate after adding a worker: %v", err)
	}
	if got := shardGrantFindings(t, opts); len(got) != 0 {
		t.Errorf("tenancy check after migrate: %q, want no finding about the shard grants", got)
	}
	addTook := time.Since(step)
	// Isolating a tenant in logical mode decodes with Citus's own output
	// plugin, which this PostgreSQL allows only when told to.
	allowCitusDecoder(t, append(c.Workers(), c.Coordinator))

	load.enter("rebalance")
	step = time.Now()
	strategytest.MustExec(t, db,
		"SELECT citus_rebalance_start(shard_transfer_mode => 'force_logical')",
		"SELECT citus_rebalance_wait()")
	rebalanceTook := time.Since(step)
	load.enter("between")

	moved := strategytest.Column[string](t, db, `SELECT a.slug FROM accounts a
		JOIN citus_shards cs ON cs.shardid = get_shard_id_for_distribution_column('public.subtasks', a.id)
		WHERE cs.table_name = 'public.subtasks'::regclass AND cs.nodeport = $1 ORDER BY a.id`, w.Port)
	if len(moved) == 0 {
		t.Fatalf("after the rebalance the new worker (port %d) holds no tenant's subtasks", w.Port)
	}
	for _, slug := range moved[:min(3, len(moved))] {
		checkWrites(t, s, tenantBySlug(tenants, slug), "after its shard moved to the new worker")
	}
	load.waitFor(t, "between", 50)

	// (b) The largest tenant to a shard of its own, in every co-located
	// table.
	load.enter("isolation")
	step = time.Now()
	var isolated int64
	if err := db.QueryRow(`SELECT isolate_tenant_to_new_shard('public.users', $1::bigint, 'CASCADE', shard_transfer_mode => 'force_logical')`,
		int64(largest.ID)).Scan(&isolated); err != nil {
		t.Fatalf("isolate %s: %v", largest.Slug, err)
	}
	isolateTook := time.Since(step)
	load.enter("after")
	checkWrites(t, s, largest, "after it was isolated")
	load.waitFor(t, "after", 200)
	phases := load.stop()

	checkAloneInItsShard(t, db, largest)
	for _, p := range phases {
		t.Logf("%-10s %s", p.name, p)
		if p.failed != 0 || p.leaked != 0 {
			t.Errorf("%s: %d failed and %d leaked of %d requests, want none (%s)", p.name, p.failed, p.leaked, p.requests, strings.Join(p.errs, "; "))
		}
		if p.requests == 0 {
			t.Errorf("%s: no request ran in that window", p.name)
		}
	}
	if during := phaseNamed(phases, "isolation"); during.largest == 0 {
		t.Errorf("isolation: no request for the largest tenant %s ran while it was being isolated", largest.Slug)
	}
	t.Logf("seeded %d tenants in %s: %s with %d subtasks, the others %d to %d", len(tenants), seedTook.Round(time.Millisecond),
		largest.Slug, largest.subtasks, slices.MinFunc(others, byCount).subtasks, slices.MaxFunc(others, byCount).subtasks)
	t.Logf("add a worker, check, migrate, check: %s; rebalance onto it: %s (%d tenants' subtasks now there); isolate %s (to shard %d): %s",
		addTook.Round(time.Millisecond), rebalanceTook.Round(time.Millisecond), len(moved), largest.Slug, isolated, isolateTook.Round(time.Millisecond))
}

// shardGrantFindings are the subjects of tenancy check's findings about
// the grants on Citus's shards and the hook that makes them.
func shardGrantFindings(t *testing.T, opts strategy.Options) []string {
	t.Helper()
	rep, err := audit.CheckSingleSchema(context.Background(), opts)
	if err != nil {
		t.Fatalf("tenancy check: %v", err)
	}
	var out []string
	for _, f := range rep.Findings {
		if f.Kind == audit.FindingGrantMissing && strings.HasPrefix(f.Subject, "Citus ") {
			out = append(out, f.Subject)
		} else {
			t.Logf("tenancy check, another finding: %s", f)
		}
	}
	slices.Sort(out)
	return out
}

// seedForGrowth seeds growAccounts small tenants, then one large one after
// them (the options apply to the accounts not there yet).
func seedForGrowth(t *testing.T, admin strategy.Admin) {
	t.Helper()
	seeder, err := seed.NewSeeder(admin, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := seed.DefaultOptions()
	o.Accounts = growAccounts
	o.MaxUsers, o.MaxProjects, o.MaxTasks, o.MaxSubtasks = 1, 2, 2, 2
	o.PasswordIterations, o.Workers = 1, 2
	if _, err := seeder.Run(context.Background(), o); err != nil {
		t.Fatalf("seed the small tenants: %v", err)
	}
	o.Accounts, o.SkipExisting = growAccounts+1, true
	o.MinProjects, o.MaxProjects, o.MinTasks, o.MaxTasks, o.MinSubtasks, o.MaxSubtasks = 10, 10, 10, 10, 10, 10
	if _, err := seeder.Run(context.Background(), o); err != nil {
		t.Fatalf("seed the largest tenant: %v", err)
	}
}

// growTenant is a tenant and how many subtasks it was seeded with.
type growTenant struct {
	models.Account
	subtasks int
}

func byCount(a, b growTenant) int { return a.subtasks - b.subtasks }

func tenantBySlug(tenants []growTenant, slug string) growTenant {
	for _, a := range tenants {
		if a.Slug == slug {
			return a
		}
	}
	panic("no tenant " + slug)
}

// readTenants reads, as the admin, every tenant and its subtask count, and
// which tenant each subtask id is of.
func readTenants(t *testing.T, db *sql.DB) ([]growTenant, map[int64]string) {
	t.Helper()
	rows, err := db.Query(`SELECT a.id, a.slug, a.name, count(s.id) FROM accounts a LEFT JOIN subtasks s ON s.account_id = a.id
		GROUP BY a.id, a.slug, a.name ORDER BY a.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tenants []growTenant
	for rows.Next() {
		var a growTenant
		if err := rows.Scan(&a.ID, &a.Slug, &a.Name, &a.subtasks); err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	owner := map[int64]string{}
	ids := strategytest.Column[string](t, db, `SELECT s.id || ' ' || a.slug FROM subtasks s JOIN accounts a ON a.id = s.account_id`)
	for _, v := range ids {
		var id int64
		var slug string
		if _, err := fmt.Sscan(v, &id, &slug); err != nil {
			t.Fatal(err)
		}
		owner[id] = slug
	}
	return tenants, owner
}

// checkWrites adds a subtask for a through the server and completes it:
// on Citus both go to the tenant's shards, the insert with an id drawn on
// the coordinator.
func checkWrites(t *testing.T, s strategy.Strategy, a growTenant, when string) {
	t.Helper()
	ctx := strategytest.TenantCtx(a.Account)
	tasks, err := s.ListTasks(ctx, 1)
	if err != nil || len(tasks) == 0 {
		t.Fatalf("ListTasks(%s) %s = %v, %v; want a task", a.Slug, when, tasks, err)
	}
	created, err := s.CreateSubtask(ctx, strategy.NewSubtask{TaskID: tasks[0].ID, Name: "written " + when})
	if err != nil {
		t.Errorf("CreateSubtask(%s) %s: %v", a.Slug, when, err)
		return
	}
	done := true
	if _, err := s.UpdateSubtask(ctx, created.ID, created.Version, strategy.SubtaskChange{IsComplete: &done}); err != nil {
		t.Errorf("UpdateSubtask(%s, %d, complete) %s: %v", a.Slug, created.ID, when, err)
	}
}

// checkAloneInItsShard: every co-located table's shard holding a's rows
// covers a single hash value and holds no other tenant's rows.
func checkAloneInItsShard(t *testing.T, db *sql.DB, a growTenant) {
	t.Helper()
	for _, table := range []string{"users", "projects", "tasks", "subtask_counts", "subtasks"} {
		var shard int64
		var single bool
		var mine, others int
		err := db.QueryRow(`SELECT shardid, shardminvalue = shardmaxvalue FROM pg_dist_shard
			WHERE shardid = get_shard_id_for_distribution_column($1, $2::bigint)`, "public."+table, int64(a.ID)).Scan(&shard, &single)
		if err != nil {
			t.Fatalf("look up %s's shard of %s: %v", a.Slug, table, err)
		}
		err = db.QueryRow(fmt.Sprintf(`SELECT count(*) FILTER (WHERE account_id = $1), count(*) FILTER (WHERE account_id <> $1)
			FROM public.%[1]s WHERE get_shard_id_for_distribution_column('public.%[1]s', account_id) = $2`, table), int64(a.ID), shard).Scan(&mine, &others)
		if err != nil {
			t.Fatalf("count the rows in shard %d of %s: %v", shard, table, err)
		}
		if !single || mine == 0 || others != 0 {
			t.Errorf("%s's shard %d of %s: one hash value %v, %d of its rows, %d of other tenants; want one value, its rows alone", a.Slug, shard, table, single, mine, others)
		}
	}
}

// allowCitusDecoder lets Citus's own logical decoding output plugin run on
// nodes (these throwaway clusters), which a shard split in logical mode
// uses: this PostgreSQL allows only the plugins output_plugin_libraries
// names (pgoutput and test_decoding by default). It waits until each node
// has reloaded its configuration.
func allowCitusDecoder(t *testing.T, nodes []*pgtest.Cluster) {
	t.Helper()
	const want = "pgoutput, test_decoding, citus"
	for _, n := range nodes {
		node, err := sql.Open("pgx", citustest.DSN(n, "postgres"))
		if err != nil {
			t.Fatal(err)
		}
		strategytest.MustExec(t, node, "ALTER SYSTEM SET output_plugin_libraries = 'pgoutput', 'test_decoding', 'citus'", "SELECT pg_reload_conf()")
		node.SetMaxIdleConns(0) // each SHOW from a fresh backend
		for got := ""; got != want; {
			if err := node.QueryRow("SHOW output_plugin_libraries").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				time.Sleep(10 * time.Millisecond)
			}
		}
		node.Close()
	}
}

// pageLoad reads pages of random tenants through the server from several
// goroutines, each request counted in the window (phase) it started in.
type pageLoad struct {
	mu      sync.Mutex
	current string
	phases  []*phaseStats
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// phaseStats is what the load saw in one window.
type phaseStats struct {
	name                              string
	requests, failed, leaked, largest int
	latencies                         []time.Duration
	errs                              []string // the first few
}

func (p phaseStats) String() string {
	l := slices.Clone(p.latencies)
	slices.Sort(l)
	at := func(q float64) time.Duration {
		if len(l) == 0 {
			return 0
		}
		return l[min(len(l)-1, int(q*float64(len(l))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("%5d requests (%4d of the largest tenant), %d failed, %d leaked; p50 %s, p99 %s, max %s",
		p.requests, p.largest, p.failed, p.leaked, at(0.5), at(0.99), at(1))
}

func phaseNamed(phases []phaseStats, name string) phaseStats {
	for _, p := range phases {
		if p.name == name {
			return p
		}
	}
	return phaseStats{}
}

// loadClients is how many requests run at once.
const loadClients = 4

func startPageLoad(s strategy.Strategy, tenants []growTenant, largest growTenant, owner map[int64]string) *pageLoad {
	l := &pageLoad{done: make(chan struct{})}
	l.enter("before")
	for i := range loadClients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 17))
			for {
				select {
				case <-l.done:
					return
				default:
				}
				a := largest
				if r.IntN(4) != 0 {
					a = tenants[r.IntN(len(tenants))]
				}
				page := 1 + r.IntN((a.subtasks+9)/10)
				l.mu.Lock()
				p := l.phases[len(l.phases)-1]
				l.mu.Unlock()
				start := time.Now()
				got, err := s.ListSubtasks(strategytest.TenantCtx(a.Account), page, 10)
				took := time.Since(start)
				problem, leaked := checkPage(a, page, got, err, owner)
				l.mu.Lock()
				p.requests++
				p.latencies = append(p.latencies, took)
				if a.ID == largest.ID {
					p.largest++
				}
				if problem != "" {
					if leaked {
						p.leaked++
					} else {
						p.failed++
					}
					if len(p.errs) < 3 {
						p.errs = append(p.errs, problem)
					}
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// checkPage says what is wrong with page of a as the server returned it:
// an error, a short page, or a row of another tenant (leaked).
func checkPage(a growTenant, page int, got strategy.SubtaskPage, err error, owner map[int64]string) (problem string, leaked bool) {
	if err != nil {
		return fmt.Sprintf("%s page %d: %v", a.Slug, page, err), false
	}
	for _, row := range got.Rows {
		// Subtasks written during the test are in no one's list yet, but
		// carry their account's slug like every row.
		if row.AccountSlug != a.Slug || (owner[row.ID] != "" && owner[row.ID] != a.Slug) {
			return fmt.Sprintf("%s page %d: subtask %d of %s", a.Slug, page, row.ID, row.AccountSlug), true
		}
	}
	if got.Total < int64(a.subtasks) || len(got.Rows) == 0 {
		return fmt.Sprintf("%s page %d: %d rows of %d, want some of at least %d", a.Slug, page, len(got.Rows), got.Total, a.subtasks), false
	}
	return "", false
}

// enter starts a new window: requests starting from now on count in it.
func (l *pageLoad) enter(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases = append(l.phases, &phaseStats{name: name})
}

// waitFor waits until at least n requests have started and ended in the
// window name.
func (l *pageLoad) waitFor(t *testing.T, name string, n int) {
	t.Helper()
	for {
		l.mu.Lock()
		p := l.phases[len(l.phases)-1]
		got := p.requests
		l.mu.Unlock()
		if p.name != name {
			t.Fatalf("waiting for requests in window %q, but the load is in %q", name, p.name)
		}
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the load and returns each window's figures, in order.
func (l *pageLoad) stop() []phaseStats {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]phaseStats, len(l.phases))
	for i, p := range l.phases {
		out[i] = *p
	}
	return out
}
