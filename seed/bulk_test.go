package seed_test

import (
	"context"
	"database/sql"
	"io"
	"strings"
	"testing"

	"tenancy/configs"
	"tenancy/internal/citustest"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

// readBack rebuilds account slug from the database, rows in id order and
// parents given by index, as Generate made it; its digest equals the
// generated account's only if every row arrived intact and in place.
func readBack(t *testing.T, db *sql.DB, slug string) seed.Account {
	t.Helper()
	var a seed.Account
	var id int64
	if err := db.QueryRow(`SELECT id, slug, name FROM accounts WHERE slug = $1`, slug).Scan(&id, &a.Account.Slug, &a.Account.Name); err != nil {
		t.Fatalf("read back %s: %v", slug, err)
	}
	// Tasks and subtasks are found through their parents' ids, which
	// places them as a join would, without one: on Citus a join on
	// anything but account_id is a repartition join, some seconds each.
	query := func(q string, arg any, scan func(rows *sql.Rows) error) {
		t.Helper()
		rows, err := db.Query(q, arg)
		if err != nil {
			t.Fatalf("read back %s: %v", slug, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatalf("read back %s: %v", slug, err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("read back %s: %v", slug, err)
		}
	}
	query(`SELECT email, first_name, last_name, password, is_active, date_joined FROM users WHERE account_id = $1 ORDER BY id`, id, func(rows *sql.Rows) error {
		var u models.User
		err := rows.Scan(&u.Email, &u.FirstName, &u.LastName, &u.Password, &u.IsActive, &u.DateJoined)
		a.Users = append(a.Users, u)
		return err
	})
	projects := map[int64]int{}
	query(`SELECT id, name, details FROM projects WHERE account_id = $1 ORDER BY id`, id, func(rows *sql.Rows) error {
		var p models.Project
		err := rows.Scan(&p.ID, &p.Name, &p.Details)
		projects[p.ID] = len(a.Projects)
		a.Projects = append(a.Projects, p)
		return err
	})
	tasks := map[int64]int{}
	query(`SELECT id, project_id, name, is_complete, details FROM tasks WHERE project_id = ANY($1) ORDER BY id`, ids(projects), func(rows *sql.Rows) error {
		var tk seed.Task
		err := rows.Scan(&tk.ID, &tk.ProjectID, &tk.Name, &tk.IsComplete, &tk.Details)
		tk.Project = projects[tk.ProjectID]
		tasks[tk.ID] = len(a.Tasks)
		a.Tasks = append(a.Tasks, tk)
		return err
	})
	query(`SELECT task_id, name, is_complete, details FROM subtasks WHERE task_id = ANY($1) ORDER BY id`, ids(tasks), func(rows *sql.Rows) error {
		var st seed.Subtask
		err := rows.Scan(&st.TaskID, &st.Name, &st.IsComplete, &st.Details)
		st.Task = tasks[st.TaskID]
		a.Subtasks = append(a.Subtasks, st)
		return err
	})
	return a
}

// ids are the keys of byID.
func ids(byID map[int64]int) []int64 {
	out := make([]int64, 0, len(byID))
	for id := range byID {
		out = append(out, id)
	}
	return out
}

// databaseChecksum is the checksum of o's accounts as they are in the
// database.
func databaseChecksum(t *testing.T, cfg configs.Config, o seed.Options) string {
	t.Helper()
	digests := make([]seed.Digest, o.Accounts)
	dbs := accountDBs(t, cfg, o.Accounts)
	for i := range digests {
		a := readBack(t, dbs[i], strategy.Slug(i))
		digests[i] = seed.AccountDigest(&a)
	}
	return seed.Checksum(digests)
}

// The checksum is a function of the options alone: not of the number of
// workers, nor of the strategy; and what is in the database is exactly what
// was generated.
func TestChecksumDependsOnlyOnTheOptions(t *testing.T) {
	t.Parallel()
	o := small(3) // pgtest's MULTIDB_COUNT
	cases := []struct {
		strategy string
		workers  int
	}{
		{strategy.SingleSchema, 1},
		{strategy.SingleSchema, 3},
		{strategy.MultiDB, 1},
		{strategy.MultiDB, 3},
		{strategy.MultiSchema, 1},
		{strategy.MultiSchema, 3},
	}
	sums := make([]string, len(cases))
	for i, c := range cases {
		cfg, s := setUp(t, c.strategy)
		o := o
		o.Workers = c.workers
		res, err := s.Run(context.Background(), o)
		if err != nil {
			t.Fatalf("%s with %d workers: %v", c.strategy, c.workers, err)
		}
		if res.Checksum == "" || res.Counts.Accounts != o.Accounts {
			t.Fatalf("%s with %d workers: %+v, want %d accounts and a checksum", c.strategy, c.workers, res, o.Accounts)
		}
		if got := databaseChecksum(t, cfg, o); got != res.Checksum {
			t.Errorf("%s with %d workers: the database holds data with checksum %s, the run reported %s", c.strategy, c.workers, got, res.Checksum)
		}
		sums[i] = res.Checksum
	}
	for i, c := range cases {
		if sums[i] != sums[0] {
			t.Errorf("%s with %d workers: checksum %s, want %s as with %s and %d workers",
				c.strategy, c.workers, sums[i], sums[0], cases[0].strategy, cases[0].workers)
		}
	}

	// The checksum does depend on the options.
	other := o
	other.Seed++
	if seed.Checksum(digestsOf(other)) == seed.Checksum(digestsOf(o)) {
		t.Error("another seed gives the same checksum")
	}
}

func digestsOf(o seed.Options) []seed.Digest {
	d := make([]seed.Digest, o.Accounts)
	for i := range d {
		a := seed.Generate(o, i, "")
		d[i] = seed.AccountDigest(&a)
	}
	return d
}

func TestResetReplacesTheSampleData(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, s := setUp(t, name)
			ctx := context.Background()
			first := small(3)
			first.Seed = 7
			if _, err := s.Run(ctx, first); err != nil {
				t.Fatal(err)
			}
			again := small(2)
			again.Reset = true
			res, err := s.Run(ctx, again)
			if err != nil {
				t.Fatalf("--reset: %v", err)
			}
			if res.Removed != 3 || res.Counts.Accounts != 2 {
				t.Errorf("--reset: removed %d, wrote %d; want 3 removed, 2 written", res.Removed, res.Counts.Accounts)
			}
			if got := databaseChecksum(t, cfg, again); got != res.Checksum {
				t.Errorf("after --reset the database holds checksum %s, want %s", got, res.Checksum)
			}
			// tenant-2 came from the first run only: it must be gone.
			if got := rowCounts(t, dbOf(t, cfg, 2), "tenant-2"); got != [5]int{} {
				t.Errorf("tenant-2 after --reset: %v rows, want none", got)
			}
		})
	}
}

// refuseTenant5 makes PostgreSQL refuse tenant-5's subtasks.
const refuseTenant5 = `
	CREATE FUNCTION refuse_tenant_5() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT slug FROM accounts WHERE id = NEW.account_id) = 'tenant-5' THEN
			RAISE EXCEPTION 'refused on purpose';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER refuse_tenant_5 BEFORE INSERT ON subtasks FOR EACH ROW EXECUTE FUNCTION refuse_tenant_5();`

// A failure part-way (here: a trigger that refuses one account's subtasks)
// leaves every account whole or absent, and says how many were written.
func TestSeedFailurePartWayLeavesNoPartialAccount(t *testing.T) {
	t.Parallel()
	d := setUpWith(t, strategy.SingleSchema, nil, nil)
	cfg, admin, s := d.cfg, d.admin, d.seeder
	db := dbOf(t, cfg, 0)
	if _, err := db.Exec(refuseTenant5); err != nil {
		t.Fatal(err)
	}
	o := small(12)
	o.Workers = 3
	preload(t, admin, o)
	res, err := s.Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "refused on purpose") || !strings.Contains(err.Error(), "tenant-5") {
		t.Fatalf("Run with tenant-5 refused: err = %v, want the refusal, naming tenant-5", err)
	}
	if !strings.Contains(err.Error(), "--skip-existing") {
		t.Errorf("error %q does not say how to finish", err)
	}
	if res.Checksum != "" {
		t.Errorf("an unfinished run reported checksum %q", res.Checksum)
	}
	if complete := completeAccounts(t, cfg, o); complete != res.Counts.Accounts {
		t.Errorf("%d complete accounts in the database, Run reported %d", complete, res.Counts.Accounts)
	}
	if got := rowCounts(t, db, "tenant-5"); got != [5]int{} {
		t.Errorf("tenant-5 after its failure: %v rows, want none", got)
	}
}

type progressLog struct{ reports []seed.Progress }

func (p *progressLog) Report(r seed.Progress) { p.reports = append(p.reports, r) }

func TestProgressCountsEveryAccount(t *testing.T) {
	t.Parallel()
	log := &progressLog{}
	s := setUpWith(t, strategy.SingleSchema, nil, log).seeder
	res, err := s.Run(context.Background(), small(5))
	if err != nil {
		t.Fatal(err)
	}
	if len(log.reports) != 5 {
		t.Fatalf("%d progress reports, want one per account (5)", len(log.reports))
	}
	last := log.reports[len(log.reports)-1]
	if last.Done != 5 || last.Total != 5 || last.Rows != res.Counts.Rows() || last.Elapsed <= 0 {
		t.Errorf("last report %+v, want 5/5 accounts and %d rows", last, res.Counts.Rows())
	}
	for i, r := range log.reports {
		if r.Done != i+1 {
			t.Errorf("report %d says %d done", i, r.Done)
		}
	}
}

// schemaShape lists the tenant tables' indexes and constraints as
// PostgreSQL would recreate them.
func schemaShape(t *testing.T, db *sql.DB) string {
	t.Helper()
	var shape string
	err := db.QueryRow(`SELECT string_agg(d, E'\n' ORDER BY d) FROM (
		SELECT pg_get_indexdef(indexrelid) AS d FROM pg_index
		WHERE indrelid = ANY ('{accounts,users,projects,tasks,subtasks}'::regclass[])
		UNION ALL
		SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = ANY ('{accounts,users,projects,tasks,subtasks}'::regclass[])) x`).Scan(&shape)
	if err != nil {
		t.Fatal(err)
	}
	return shape
}

// A seed into empty singleschema tables drops the foreign keys and plain
// indexes, copies, and rebuilds them, all in one transaction: it ends with
// every account written and the schema as it was, or with nothing written
// and the schema as it was.
func TestBulkSeedIsAllOrNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare string // SQL run first
		cancel  bool   // cancel after the first progress report
		want    string // in the error; "" for success
	}{
		{name: "success"},
		{name: "failure", prepare: refuseTenant5, want: "refused on purpose"},
		{name: "cancelled", cancel: true, want: "interrupted: nothing was written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var reporter seed.Reporter
			if tt.cancel {
				reporter = &cancelAfterFirst{cancel: cancel}
			}
			d := setUpWith(t, strategy.SingleSchema, nil, reporter)
			cfg, s := d.cfg, d.seeder
			db := dbOf(t, cfg, 0)
			if tt.prepare != "" {
				if _, err := db.Exec(tt.prepare); err != nil {
					t.Fatal(err)
				}
			}
			before := schemaShape(t, db)
			if !strings.Contains(before, "FOREIGN KEY") || !strings.Contains(before, "subtasks_account_name") {
				t.Fatalf("schema before the seed lacks its keys or indexes:\n%s", before)
			}
			// Enough rows for several COPY batches, so that a cancel lands
			// between them.
			o := seed.DefaultOptions()
			o.Accounts = 300
			res, err := s.Run(ctx, o)
			var accounts int
			if err := db.QueryRow(`SELECT count(*) FROM accounts`).Scan(&accounts); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if err != nil || accounts != 300 || res.Counts.Accounts != 300 {
					t.Fatalf("bulk seed: err %v, %d accounts in the database, %d reported; want 300", err, accounts, res.Counts.Accounts)
				}
				if got := databaseChecksum(t, cfg, o); got != res.Checksum {
					t.Errorf("the database holds checksum %s, the run reported %s", got, res.Checksum)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one containing %q", err, tt.want)
				}
				if accounts != 0 || res.Counts.Accounts != 0 {
					t.Errorf("after a failed bulk seed: %d accounts in the database, %d reported; want 0", accounts, res.Counts.Accounts)
				}
			}
			if after := schemaShape(t, db); after != before {
				t.Errorf("indexes and constraints changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestChecksumOnCitus: seed on a Citus coordinator (singleschema, its
// tables distributed over two workers by setup) ends with the checksum the
// same options give on plain PostgreSQL, which is every strategy's
// (TestChecksumDependsOnlyOnTheOptions), and the data read back through
// the coordinator has it; so does a run with --reset there, which empties
// the distributed tables first. It points the connection variables at the
// coordinator (citustest.UseCoordinator), so it is not parallel: the
// package's parallel tests run after it.
func TestChecksumOnCitus(t *testing.T) {
	ctx := context.Background()
	o := small(3)
	_, plain := setUp(t, strategy.SingleSchema)
	want, err := plain.Run(ctx, o)
	if err != nil {
		t.Fatalf("seed on PostgreSQL: %v", err)
	}

	c := citustest.New(t, 2)
	c.UseCoordinator(t)
	cfg, err := configs.Load(pgtest.Getenv(pgtest.Env(t, strategy.SingleSchema, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.MustCreateDatabase(t, cfg.Strategy.Database)
	admin, err := strategies.OpenAdmin(cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatalf("Setup on Citus: %v", err)
	}
	var distributed int
	if err := pgtest.Admin(t, cfg.Strategy.Database).QueryRow(`SELECT count(*) FROM citus_tables WHERE citus_table_type = 'distributed'`).Scan(&distributed); err != nil || distributed != 5 {
		t.Fatalf("Setup on Citus distributed %d tables (err %v), want 5", distributed, err)
	}
	s, err := seed.NewSeeder(admin, cfg.Strategy.TenantCount, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []struct {
		name  string
		reset bool
	}{{"seed", false}, {"seed --reset", true}} {
		o := o
		o.Reset = run.reset
		res, err := s.Run(ctx, o)
		if err != nil {
			t.Fatalf("%s on Citus: %v", run.name, err)
		}
		if res.Checksum != want.Checksum || res.Counts != want.Counts {
			t.Errorf("%s on Citus: checksum %s, %v; want %s, %v as on PostgreSQL", run.name, res.Checksum, res.Counts, want.Checksum, want.Counts)
		}
		if got := databaseChecksum(t, cfg, o); got != want.Checksum {
			t.Errorf("%s on Citus: the coordinator reads back data with checksum %s, want %s", run.name, got, want.Checksum)
		}
	}
}
