package seed_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"tenancy/configs"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/multischema"
	"tenancy/strategy/strategies"
)

// setUp creates a fresh deployment and returns its config and a seeder.
func setUp(t *testing.T, strategyName string) (configs.Config, *seed.Seeder) {
	t.Helper()
	d := setUpWith(t, strategyName, nil, nil)
	return d.cfg, d.seeder
}

// deployment is a fresh, set-up deployment and a seeder over its admin.
type deployment struct {
	cfg    configs.Config
	admin  strategy.Admin
	seeder *seed.Seeder
}

// setUpWith is setUp with extra environment and a progress reporter.
func setUpWith(t *testing.T, strategyName string, extra map[string]string, reporter seed.Reporter) deployment {
	t.Helper()
	cfg, err := configs.Load(pgtest.Getenv(pgtest.Env(t, strategyName, extra)))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := strategies.OpenAdmin(cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Setup(context.Background(), nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	s, err := seed.NewSeeder(admin, cfg.Strategy.TenantCount, io.Discard, reporter)
	if err != nil {
		t.Fatal(err)
	}
	return deployment{cfg: cfg, admin: admin, seeder: s}
}

func small(accounts int) seed.Options {
	o := seed.DefaultOptions()
	o.Accounts = accounts
	o.MaxProjects, o.MaxTasks, o.MaxSubtasks = 6, 4, 4
	return o
}

// tableDump is every row of every table, in id order, as PostgreSQL prints
// them.
func tableDump(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"accounts", "users", "projects", "tasks", "subtasks"} {
		var rows sql.NullString
		if err := db.QueryRow(fmt.Sprintf(`SELECT string_agg(t::text, E'\n' ORDER BY id) FROM %s t`, table)).Scan(&rows); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		fmt.Fprintf(&b, "== %s\n%s\n", table, rows.String)
	}
	return b.String()
}

// tenantDump is one tenant's data without ids, which differ between the
// strategies (multidb numbers each database from 1).
func tenantDump(t *testing.T, db *sql.DB, slug string) string {
	t.Helper()
	var b strings.Builder
	queries := []string{
		`SELECT a.name FROM accounts a WHERE a.slug = $1`,
		`SELECT u.email || u.first_name || u.last_name || u.password || u.is_active || u.date_joined FROM users u JOIN accounts a ON a.id = u.account_id WHERE a.slug = $1 ORDER BY u.id`,
		`SELECT p.name || '|' || p.details FROM projects p JOIN accounts a ON a.id = p.account_id WHERE a.slug = $1 ORDER BY p.id`,
		`SELECT p.name || '|' || t.name || '|' || t.is_complete || '|' || t.details FROM tasks t JOIN projects p ON p.id = t.project_id JOIN accounts a ON a.id = p.account_id WHERE a.slug = $1 ORDER BY t.id`,
		`SELECT t.name || '|' || s.name || '|' || s.is_complete || '|' || s.details FROM subtasks s JOIN tasks t ON t.id = s.task_id JOIN projects p ON p.id = t.project_id JOIN accounts a ON a.id = p.account_id WHERE a.slug = $1 ORDER BY s.id`,
	}
	for _, q := range queries {
		rows, err := db.Query(q, slug)
		if err != nil {
			t.Fatalf("dump %s: %v", slug, err)
		}
		n := 0
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			b.WriteString(line + "\n")
			n++
		}
		rows.Close()
		if n == 0 && !strings.Contains(q, "users") {
			t.Fatalf("dump %s: no rows for %q", slug, q)
		}
	}
	return b.String()
}

// Two seeds of fresh databases give the same rows, ids included (see
// TestSeedIDsDependOnlyOnTheOptions for other worker counts and paths).
func TestSeedingTwiceGivesIdenticalData(t *testing.T) {
	t.Parallel()
	var dumps []string
	for range 2 {
		cfg, s := setUp(t, strategy.SingleSchema)
		o := small(3)
		o.Workers = 1
		res, err := s.Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Counts.Accounts != 3 || res.Counts.Subtasks == 0 {
			t.Fatalf("Run counts = %+v, want 3 accounts with subtasks", res.Counts)
		}
		dumps = append(dumps, tableDump(t, pgtest.Admin(t, cfg.Strategy.Database)))
	}
	if dumps[0] != dumps[1] {
		t.Errorf("two seeds of empty databases differ:\n%.2000s\n---\n%.2000s", dumps[0], dumps[1])
	}
}

func TestStrategiesSeedTheSameRows(t *testing.T) {
	t.Parallel()
	single, s1 := setUp(t, strategy.SingleSchema)
	r1, err := s1.Run(context.Background(), small(3))
	if err != nil {
		t.Fatal(err)
	}
	singleDB := dbOf(t, single, 0)
	for _, name := range strategy.Names() {
		if name == strategy.SingleSchema {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cfg, s := setUp(t, name)
			r2, err := s.Run(context.Background(), small(3))
			if err != nil {
				t.Fatal(err)
			}
			if r1.Counts != r2.Counts {
				t.Errorf("counts: singleschema %v, %s %v", r1.Counts, name, r2.Counts)
			}
			for i := range 3 {
				slug := strategy.Slug(i)
				got, want := tenantDump(t, dbOf(t, cfg, i), slug), tenantDump(t, singleDB, slug)
				if got != want {
					t.Errorf("%s: %s rows differ from singleschema rows:\n%.1500s\n---\n%.1500s", slug, name, got, want)
				}
			}
		})
	}
}

func TestSeedWritesNothingWhenAccountsExist(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, s := setUp(t, name)
			ctx := context.Background()
			if _, err := s.Run(ctx, small(1)); err != nil {
				t.Fatal(err)
			}
			tenant0DB := dbOf(t, cfg, 0)
			before := tableDump(t, tenant0DB)

			_, err := s.Run(ctx, small(3))
			if !errors.Is(err, seed.ErrAccountsExist) || !strings.Contains(err.Error(), "tenant-0") {
				t.Errorf("seeding over tenant-0: err = %v, want ErrAccountsExist naming tenant-0", err)
			}
			if got := rowCounts(t, dbOf(t, cfg, 1), "tenant-1"); got != [5]int{} {
				t.Errorf("tenant-1 after a refused seed: accounts, users, projects, tasks, subtasks = %v, want none", got)
			}
			if after := tableDump(t, tenant0DB); after != before {
				t.Error("a refused seed changed the data")
			}

			// --skip-existing leaves tenant-0 alone and adds the others.
			tenant0 := tenantDump(t, tenant0DB, "tenant-0")
			skip := small(3)
			skip.SkipExisting = true
			res, err := s.Run(ctx, skip)
			if err != nil || res.Skipped != 1 || res.Counts.Accounts != 2 {
				t.Errorf("--skip-existing over tenant-0: %+v, %v; want 1 skipped, 2 written", res, err)
			}
			if after := tenantDump(t, tenant0DB, "tenant-0"); after != tenant0 {
				t.Error("--skip-existing changed tenant-0's data")
			}
			if res, err := s.Run(ctx, skip); err != nil || res.Skipped != 3 || res.Counts.Accounts != 0 {
				t.Errorf("--skip-existing with every account there: %+v, %v; want 3 skipped, none written", res, err)
			}
		})
	}
}

func TestSeedRollbackCommitsNothing(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, s := setUp(t, name)
			o := small(2)
			o.Rollback = true
			res, err := s.Run(context.Background(), o)
			if err != nil || res.Counts.Accounts != 2 || res.Counts.Subtasks == 0 {
				t.Fatalf("--rollback: %+v, %v; want 2 accounts generated", res.Counts, err)
			}
			for i := range o.Accounts {
				if got := rowCounts(t, dbOf(t, cfg, i), strategy.Slug(i)); got != [5]int{} {
					t.Errorf("%s after --rollback: accounts, users, projects, tasks, subtasks = %v, want none", strategy.Slug(i), got)
				}
			}
		})
	}
}

// cancelAfterFirst cancels as soon as the first account is reported, so
// that the cancellation lands in the middle of later accounts (another
// worker is writing one). A delay here made the test depend on the
// machine's speed: a fast one finished every account first.
type cancelAfterFirst struct {
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelAfterFirst) Report(seed.Progress) {
	c.once.Do(c.cancel)
}

func TestSeedStopsCleanlyWhenCancelled(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d := setUpWith(t, name, map[string]string{"MULTIDB_COUNT": "8"}, &cancelAfterFirst{cancel: cancel})
			cfg, admin, s := d.cfg, d.admin, d.seeder
			o := seed.DefaultOptions()
			o.Accounts = 8
			o.Workers = 2 // so that accounts are still waiting when the cancel comes
			if name == strategy.SingleSchema {
				preload(t, admin, o)
			}
			res, err := s.Run(ctx, o)
			if err == nil || !strings.Contains(err.Error(), "interrupted") || !errors.Is(err, context.Canceled) {
				t.Fatalf("Run cancelled part-way: err = %v, want an interruption", err)
			}
			if res.Counts.Accounts < 1 || res.Counts.Accounts >= o.Accounts {
				t.Fatalf("accounts written before the cancel = %d, want between 1 and %d", res.Counts.Accounts, o.Accounts-1)
			}
			if complete := completeAccounts(t, cfg, o); complete != res.Counts.Accounts {
				t.Errorf("%d complete accounts in the database, Run reported %d", complete, res.Counts.Accounts)
			}
		})
	}
}

// preload writes an account outside o's range, so that the tables are not
// empty and a seed writes each account in its own transaction rather than
// all of them in one (see TestBulkSeedIsAllOrNothing for that path).
func preload(t *testing.T, admin strategy.Admin, o seed.Options) {
	t.Helper()
	other := seed.Generate(o, 999, "")
	if err := admin.LoadTenant(context.Background(), &other, true); err != nil {
		t.Fatalf("preload tenant-999: %v", err)
	}
}

// completeAccounts checks that each of o's accounts is in the database
// whole or not at all, and returns how many are there.
func completeAccounts(t *testing.T, cfg configs.Config, o seed.Options) int {
	t.Helper()
	complete := 0
	for i := range o.Accounts {
		slug := strategy.Slug(i)
		got := rowCounts(t, dbOf(t, cfg, i), slug)
		g := seed.Generate(o, i, "")
		whole := [5]int{1, len(g.Users), len(g.Projects), len(g.Tasks), len(g.Subtasks)}
		switch got {
		case whole:
			complete++
		case [5]int{}:
		default:
			t.Errorf("%s is partly written: accounts, users, projects, tasks, subtasks = %v, want %v or none", slug, got, whole)
		}
	}
	return complete
}

// dbOf is an admin pool that reaches account i's tables under their plain
// names: on its database (multidb), on the one database with its schema
// first on the search_path (multischema: tenant-i has id i+1), or on the
// one database (singleschema).
func dbOf(t *testing.T, cfg configs.Config, i int) *sql.DB {
	switch cfg.Strategy.Strategy {
	case strategy.MultiDB:
		return pgtest.Admin(t, cfg.Strategy.TenantDatabase(i))
	case strategy.MultiSchema:
		return pgtest.AdminIn(t, cfg.Strategy.Database, multischema.SchemaOf(models.TenantID(i+1)))
	}
	return pgtest.Admin(t, cfg.Strategy.Database)
}

// rowCounts counts slug's account and the rows under it.
// A multischema tenant that was never created, or was removed, has no
// schema, so no tables of its own: only the directory is counted.
func rowCounts(t *testing.T, db *sql.DB, slug string) (c [5]int) {
	t.Helper()
	var tables bool
	if err := db.QueryRow(`SELECT to_regclass('users') IS NOT NULL`).Scan(&tables); err != nil {
		t.Fatalf("count rows of %s: %v", slug, err)
	}
	if !tables {
		if err := db.QueryRow(`SELECT count(*) FROM accounts WHERE slug = $1`, slug).Scan(&c[0]); err != nil {
			t.Fatalf("count rows of %s: %v", slug, err)
		}
		return c
	}
	err := db.QueryRow(`
		SELECT (SELECT count(*) FROM accounts WHERE slug = $1),
		       (SELECT count(*) FROM users u JOIN accounts a ON a.id = u.account_id WHERE a.slug = $1),
		       (SELECT count(*) FROM projects p JOIN accounts a ON a.id = p.account_id WHERE a.slug = $1),
		       (SELECT count(*) FROM tasks t JOIN projects p ON p.id = t.project_id JOIN accounts a ON a.id = p.account_id WHERE a.slug = $1),
		       (SELECT count(*) FROM subtasks s JOIN tasks t ON t.id = s.task_id JOIN projects p ON p.id = t.project_id JOIN accounts a ON a.id = p.account_id WHERE a.slug = $1)`,
		slug).Scan(&c[0], &c[1], &c[2], &c[3], &c[4])
	if err != nil {
		t.Fatalf("count rows of %s: %v", slug, err)
	}
	return c
}
