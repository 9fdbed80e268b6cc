package tenantfile

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"tenancy/configs"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
	"tenancy/strategy/strategytest"
)

// target is a fresh, set-up deployment of one strategy; it is dropped
// when the test ends.
type target struct {
	opts  strategy.Options
	admin strategy.Admin
}

func deploy(t *testing.T, name string, tenantDatabases int) target {
	t.Helper()
	cfg, err := configs.Load(pgtest.Getenv(pgtest.Env(t, name, map[string]string{"MULTIDB_COUNT": strconv.Itoa(tenantDatabases)})))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := strategies.OpenAdmin(cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Setup(context.Background(), nil); err != nil {
		t.Fatalf("%s: Setup: %v", name, err)
	}
	return target{cfg.Strategy, admin}
}

func (d target) seed(t *testing.T, o seed.Options) {
	t.Helper()
	s, err := seed.NewSeeder(d.admin, d.opts.TenantCount, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), o); err != nil {
		t.Fatalf("%s: seed: %v", d.opts.Strategy, err)
	}
}

func (d target) open(t *testing.T) strategy.Strategy {
	t.Helper()
	s, err := strategies.Open(context.Background(), d.opts)
	if err != nil {
		t.Fatalf("%s: Open: %v", d.opts.Strategy, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (d target) export(t *testing.T, slug string) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := Export(context.Background(), d.admin, slug, &b, true); err != nil {
		t.Fatalf("%s: Export(%s): %v", d.opts.Strategy, slug, err)
	}
	return b.Bytes()
}

// ids are the ids of tenant slug's rows in d, by table, as an export
// reads them.
func (d target) ids(t *testing.T, slug string) [][]int64 {
	t.Helper()
	_, tables, _, err := snapshot(context.Background(), d.admin.(strategy.TenantExporter), slug)
	if err != nil {
		t.Fatalf("%s: read %s: %v", d.opts.Strategy, slug, err)
	}
	out := make([][]int64, len(tables))
	for i, tbl := range tables {
		for _, line := range strings.Split(strings.TrimSuffix(string(tbl), "\n"), "\n") {
			if line == "" {
				continue
			}
			id, err := strconv.ParseInt(strings.SplitN(line, "\t", 2)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = append(out[i], id)
		}
	}
	return out
}

// addOther creates a tenant named other with a row in every table, so
// that the shared sequences of singleschema have moved before an import.
func (d target) addOther(t *testing.T) {
	t.Helper()
	err := d.admin.CreateTenant(context.Background(), models.Account{Slug: "other", Name: "Other"}, true, func(tx *gorm.DB) error {
		p := models.Project{Name: "other's"}
		if err := tx.Create(&models.User{Email: "o@example.com", DateJoined: time.Unix(0, 0)}).Error; err != nil {
			return err
		}
		if err := tx.Create(&p).Error; err != nil {
			return err
		}
		task := models.Task{ProjectID: p.ID, Name: "other's"}
		if err := tx.Create(&task).Error; err != nil {
			return err
		}
		return tx.Create(&[]models.Subtask{{TaskID: task.ID, Name: "a"}, {TaskID: task.ID, Name: "b"}}).Error
	})
	if err != nil {
		t.Fatalf("%s: create other: %v", d.opts.Strategy, err)
	}
}

func fromOne(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) + 1
	}
	return out
}

// The move: the largest of several seeded tenants goes from
// singleschema to multidb and to multischema, and from each back to
// singleschema, with its seed checksum unchanged at every step. multidb
// and multischema number its rows from 1, as its own database or schema
// holds it alone; singleschema gives it ids from the shared sequences,
// after those of the tenants already there. Each server then serves it.
func TestMoveTheLargestTenantBetweenStrategies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := seed.DefaultOptions()
	o.Accounts, o.MaxProjects = 6, 10
	hash, err := seed.HashPassword(seed.SamplePassword, o.Seed)
	if err != nil {
		t.Fatal(err)
	}
	largest, rows := 0, 0
	var want string
	var generated strategy.TenantData
	for i := range o.Accounts {
		a := seed.Generate(o, i, hash)
		if a.Rows() > rows {
			largest, rows, generated = i, a.Rows(), a
		}
	}
	want = Checksum(&generated)
	slug := strategy.Slug(largest)

	source := deploy(t, strategy.SingleSchema, 1)
	source.seed(t, o)
	file := source.export(t, slug)
	m, _, err := Read(bytes.NewReader(file), DefaultLimits())
	if err != nil {
		t.Fatalf("Read(export of %s): %v", slug, err)
	}
	if m.Checksum != want || m.Rows() != rows || m.Strategy != strategy.SingleSchema {
		t.Fatalf("export of %s: checksum %s, %d rows, from %s; want the seed checksum %s, %d rows, from singleschema", slug, m.Checksum, m.Rows(), m.Strategy, want, rows)
	}
	sourceIDs := source.ids(t, slug)

	// The same tenant under a slug of its own, which no strategy can
	// derive an id from: a singleschema deployment takes it under --as,
	// and its export is moved as the tenant-N one is.
	const named = "acme-moved"
	renamed := generated
	renamed.Account.Slug = named
	wantNamed := Checksum(&renamed)
	if res, err := Import(ctx, source.admin, bytes.NewReader(file), ImportOptions{As: named}); err != nil || res.Checksum != wantNamed {
		t.Fatalf("Import(%s --as %s) into singleschema = checksum %s, %v; want %s", slug, named, res.Checksum, err, wantNamed)
	}
	namedFile := source.export(t, named)

	check := func(d target, file []byte, slug, want string, wantIDs func(table int, ids []int64) error) {
		t.Helper()
		name := d.opts.Strategy
		res, err := Import(ctx, d.admin, bytes.NewReader(file), ImportOptions{})
		if err != nil {
			t.Fatalf("Import(%s) into %s: %v", slug, name, err)
		}
		if res.Checksum != want || res.Rows != rows {
			t.Errorf("Import(%s) into %s: checksum %s, %d rows; want %s, %d", slug, name, res.Checksum, res.Rows, want, rows)
		}
		for i, ids := range d.ids(t, slug) {
			if err := wantIDs(i, ids); err != nil {
				t.Errorf("%s in %s: %s ids %v: %v", slug, name, strategy.DataTables()[i], ids, err)
			}
		}
		s := d.open(t)
		acct, err := s.TenantBySlug(ctx, slug)
		if err != nil {
			t.Fatalf("%s: TenantBySlug(%s): %v", name, slug, err)
		}
		page, err := s.ListSubtasks(models.NewContextWithTenant(ctx, acct), 1, 10)
		if err != nil || page.Total != int64(len(generated.Subtasks)) {
			t.Errorf("%s: ListSubtasks(%s) = total %d, %v; want %d subtasks", name, slug, page.Total, err, len(generated.Subtasks))
		}
	}
	ownNumbering := func(i int, ids []int64) error {
		want := fromOne(len(ids))
		if i == 0 {
			want = []int64{int64(largest) + 1} // tenant-i's account is i+1
		}
		if !slices.Equal(ids, want) {
			return fmt.Errorf("want %v", want)
		}
		return nil
	}
	back := func(other target) func(i int, ids []int64) error {
		otherIDs := other.ids(t, "other")
		return func(i int, ids []int64) error {
			// Drawn from the sequences, after the other tenant's.
			if len(ids) > 0 && ids[0] <= slices.Max(otherIDs[i]) {
				return fmt.Errorf("not after the other tenant's %v", otherIDs[i])
			}
			return nil
		}
	}

	// A tenant created by its import: its account has the id the target's
	// directory lists it with, which no other tenant there has (multidb:
	// not one of the ids setup gave tenant-0 to tenant-5), and its rows
	// are numbered from 1.
	newNumbering := func(d target) func(i int, ids []int64) error {
		return func(i int, ids []int64) error {
			want := fromOne(len(ids))
			if i == 0 {
				entries, err := d.admin.ListTenants(ctx)
				if err != nil {
					return err
				}
				var id int64
				others := map[int64]string{}
				for _, e := range entries {
					if e.Slug == named {
						id = int64(e.ID)
					} else {
						others[int64(e.ID)] = e.Slug
					}
				}
				if other, ok := others[id]; ok || id == 0 {
					return fmt.Errorf("the directory lists %s with id %d, which %q has too", named, id, other)
				}
				want = []int64{id}
			}
			if !slices.Equal(ids, want) {
				return fmt.Errorf("want %v", want)
			}
			return nil
		}
	}

	for _, via := range []string{strategy.MultiDB, strategy.MultiSchema} {
		t.Run(via, func(t *testing.T) {
			d := deploy(t, via, o.Accounts)
			check(d, file, slug, want, ownNumbering)
			if slices.Equal(d.ids(t, slug)[3], sourceIDs[3]) && largest > 0 {
				t.Errorf("%s kept singleschema's task ids %v", via, sourceIDs[3])
			}
			check(d, namedFile, named, wantNamed, newNumbering(d))
			home := deploy(t, strategy.SingleSchema, 1)
			home.addOther(t)
			check(home, d.export(t, slug), slug, want, back(home))
			check(home, d.export(t, named), named, wantNamed, back(home))
		})
	}
}

// An export reads one snapshot: rows committed while it runs (here,
// between the copy of one table and the next) are in none of its tables,
// so the file never holds a subtask without its task or a task without
// its project. Read committed would take them in the later tables only.
func TestExportIsOneSnapshot(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d := deploy(t, name, 2)
			o := seed.DefaultOptions()
			o.Accounts, o.MaxProjects = 2, 3
			d.seed(t, o)
			s := d.open(t)
			acct, err := s.TenantBySlug(ctx, "tenant-1")
			if err != nil {
				t.Fatal(err)
			}
			tctx := models.NewContextWithTenant(ctx, acct)
			before := d.export(t, "tenant-1")
			mBefore, _, err := Read(bytes.NewReader(before), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}

			// Before each of projects, tasks and subtasks is copied, a
			// transaction adds a project, a task in it and a subtask in
			// that, and commits.
			names := strategy.DataTables()
			bufs := make([]bytes.Buffer, len(names))
			_, err = d.admin.(strategy.TenantExporter).ExportTenant(ctx, "tenant-1", func(table string) (io.Writer, error) {
				if table != "accounts" && table != "users" {
					err := s.Tx(tctx, func(tx *gorm.DB) error {
						p := models.Project{Name: "during " + table}
						if err := tx.Create(&p).Error; err != nil {
							return err
						}
						task := models.Task{ProjectID: p.ID, Name: "during " + table}
						if err := tx.Create(&task).Error; err != nil {
							return err
						}
						return tx.Create(&models.Subtask{TaskID: task.ID, Name: "during " + table}).Error
					})
					if err != nil {
						return nil, fmt.Errorf("write during the export: %w", err)
					}
				}
				return &bufs[slices.Index(names, table)], nil
			})
			if err != nil {
				t.Fatalf("ExportTenant: %v", err)
			}
			tables := make([][]byte, len(bufs))
			for i := range bufs {
				tables[i] = bufs[i].Bytes()
			}
			data, err := Decode(tables)
			if err != nil {
				t.Fatalf("the export taken while rows were written does not hold together: %v", err)
			}
			if got := Checksum(data); got != mBefore.Checksum {
				t.Errorf("export during writes: checksum %s, want %s as before them (rows committed after it began are in it)", got, mBefore.Checksum)
			}
			after := d.export(t, "tenant-1")
			mAfter, _, err := Read(bytes.NewReader(after), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := mAfter.Tables[4].Rows, mBefore.Tables[4].Rows+3; got != want {
				t.Errorf("export after the writes: %d subtasks, want %d", got, want)
			}
		})
	}
}

// A tenant written to all the time exports cleanly, and each export is
// one instant of it: every task the writer added is there with all of
// its subtasks or not at all.
func TestExportWhileTheTenantIsWritten(t *testing.T) {
	t.Parallel()
	const perTask = 3
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d := deploy(t, name, 1)
			o := seed.DefaultOptions()
			o.Accounts, o.MaxProjects = 1, 5
			d.seed(t, o)
			s := d.open(t)
			acct, err := s.TenantBySlug(ctx, "tenant-0")
			if err != nil {
				t.Fatal(err)
			}
			tctx := models.NewContextWithTenant(ctx, acct)
			var written atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var writeErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					err := s.Tx(tctx, func(tx *gorm.DB) error {
						var project int64
						if err := tx.Model(&models.Project{}).Order("id").Limit(1).Pluck("id", &project).Error; err != nil {
							return err
						}
						task := models.Task{ProjectID: project, Name: fmt.Sprintf("w-%d", n)}
						if err := tx.Create(&task).Error; err != nil {
							return err
						}
						subs := make([]models.Subtask, perTask)
						for i := range subs {
							subs[i] = models.Subtask{TaskID: task.ID, Name: fmt.Sprintf("w-%d-%d", n, i)}
						}
						return tx.Create(&subs).Error
					})
					if err != nil {
						writeErr = err
						return
					}
					written.Add(1)
				}
			}()
			for written.Load() == 0 && writeErr == nil {
				time.Sleep(time.Millisecond)
			}
			seen := map[int]bool{}
			for range 8 {
				m, data, err := Read(bytes.NewReader(d.export(t, "tenant-0")), DefaultLimits())
				if err != nil {
					t.Fatalf("Read(export while writing): %v", err)
				}
				perWriterTask := map[int]int{}
				tasks := 0
				for _, task := range data.Tasks {
					if strings.HasPrefix(task.Name, "w-") {
						tasks++
					}
				}
				for _, st := range data.Subtasks {
					if strings.HasPrefix(st.Name, "w-") {
						perWriterTask[st.Task]++
					}
				}
				for task, n := range perWriterTask {
					if n != perTask {
						t.Errorf("export: writer task %q has %d subtasks, want %d", data.Tasks[task].Name, n, perTask)
					}
				}
				if len(perWriterTask) != tasks {
					t.Errorf("export: %d writer tasks, %d of them with subtasks; want all with theirs", tasks, len(perWriterTask))
				}
				if m.Tables[3].Rows != len(data.Tasks) || m.Tables[4].Rows != len(data.Subtasks) {
					t.Errorf("manifest counts %d tasks, %d subtasks; the data %d, %d", m.Tables[3].Rows, m.Tables[4].Rows, len(data.Tasks), len(data.Subtasks))
				}
				seen[tasks] = true
			}
			close(stop)
			wg.Wait()
			if writeErr != nil {
				t.Fatalf("writer: %v", writeErr)
			}
			if len(seen) < 2 {
				t.Errorf("every export saw the same writer tasks (%v): the exports did not overlap the writes", seen)
			}
		})
	}
}

// fingerprint is everything a deployment holds that an import could
// change: its databases, every row of every table in them, their schemas,
// the roles named after it, and (separately) its sequences' positions.
func fingerprint(t *testing.T, opts strategy.Options) (rows, sequences string) {
	t.Helper()
	// Pools of its own, closed before it returns: it runs many times in
	// one test.
	open := func(database string) *sql.DB {
		db, err := sql.Open("pgx", pgtest.DSN("", "", database))
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	admin := open("postgres")
	defer admin.Close()
	var b, seqs strings.Builder
	dbs := strategytest.Column[string](t, admin, `SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $1 || '_') ORDER BY 1`, opts.Database)
	fmt.Fprintf(&b, "databases %v\nroles %v\n", dbs,
		strategytest.Column[string](t, admin, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1`, opts.Database))
	for _, name := range dbs {
		db := open(name)
		defer db.Close()
		fmt.Fprintf(&b, "%s schemas %v\n", name, strategytest.Column[string](t, db, `SELECT nspname FROM pg_namespace ORDER BY 1`))
		for _, tbl := range strategytest.Column[string](t, db, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`) {
			sum := strategytest.Column[string](t, db, `SELECT md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '')) FROM `+tbl+` t`)
			fmt.Fprintf(&b, "%s %s %v\n", name, tbl, sum)
		}
		fmt.Fprintf(&seqs, "%s %v\n", name, strategytest.Column[string](t, db, `SELECT format('%s.%s=%s', schemaname, sequencename, last_value) FROM pg_sequences ORDER BY 1`))
	}
	return b.String(), seqs.String()
}

// fileOf is a tenant file of account i of o, made without a database,
// after mutate has changed its manifest or tables (their hashes updated).
func fileOf(t *testing.T, o seed.Options, i int, mutate func(m *Manifest, tables [][]byte)) []byte {
	t.Helper()
	hash, err := seed.HashPassword(seed.SamplePassword, o.Seed)
	if err != nil {
		t.Fatal(err)
	}
	a := seed.Generate(o, i, hash)
	return tarOf(t, entries(t, &a, mutate, false))
}

// An import that is refused leaves the target as it was, to the byte: a
// damaged or altered file, a file of another version, a slug the target
// has, a slug it cannot hold; and one the database refuses part-way is
// rolled back whole (only sequence positions, which PostgreSQL never
// rolls back, may have moved).
func TestRefusedImportsWriteNothing(t *testing.T) {
	t.Parallel()
	o := seed.DefaultOptions()
	o.Accounts, o.MaxProjects = 2, 4
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := deploy(t, name, 3)
			d.seed(t, o) // tenant-0 and tenant-1; tenant-2 is free
			// Two users with one email, in a file that is otherwise
			// sound (its counts and checksum say so): every check passes,
			// and the database refuses the load after the account and
			// some rows were sent.
			duplicateEmail := fileOf(t, o, 2, func(m *Manifest, tables [][]byte) {
				first := bytes.SplitN(tables[1], []byte("\n"), 2)[0]
				dup := bytes.Replace(first, []byte("1\t"), []byte("999\t"), 1)
				tables[1] = append(tables[1], append(dup, '\n')...)
				m.Tables[1].Rows++
				d, err := Decode(tables)
				if err != nil {
					t.Fatal(err)
				}
				m.Checksum = Checksum(d)
			})
			tests := []struct {
				name      string
				file      []byte
				opts      ImportOptions
				want      error
				sayings   string
				sequences bool // the sequences may have moved
			}{
				{"checksum mismatch", fileOf(t, o, 2, func(m *Manifest, _ [][]byte) { m.Checksum = "0000000000000000" }), ImportOptions{}, ErrInvalid, "checksum mismatch", false},
				{"data altered", fileOf(t, o, 2, func(_ *Manifest, tables [][]byte) {
					tables[2] = bytes.Replace(tables[2], []byte("\t"), []byte("\tX"), 1)
				}), ImportOptions{}, ErrInvalid, "checksum mismatch", false},
				{"unknown version", fileOf(t, o, 2, func(m *Manifest, _ [][]byte) { m.Version = 9 }), ImportOptions{}, ErrInvalid, "format version 9", false},
				{"cut short", fileOf(t, o, 2, nil)[:1500], ImportOptions{}, ErrInvalid, "not a valid tenant file", false},
				{"existing slug", fileOf(t, o, 1, nil), ImportOptions{}, ErrExists, "already exists", false},
				{"existing slug by --as", fileOf(t, o, 2, nil), ImportOptions{As: "tenant-0"}, ErrExists, "already exists", false},
				{"bad slug", fileOf(t, o, 2, nil), ImportOptions{As: "Tenant 2"}, nil, "lower-case letters", false},
				{"reserved slug", fileOf(t, o, 2, nil), ImportOptions{As: "tenant-template"}, nil, "reserved", false},
				{"refused by the database", duplicateEmail, ImportOptions{}, nil, "duplicate key", true},
				// The same under a slug the deployment does not list:
				// multidb's new database and multischema's new schema
				// and role go again, and no directory row or account is
				// left.
				{"refused by the database, under a new slug", duplicateEmail, ImportOptions{As: "acme"}, nil, "duplicate key", true},
			}
			if name == strategy.MultiDB {
				// A database with the new tenant's name that the
				// directory does not list is not taken over (nor
				// dropped): it may hold anything.
				if _, err := pgtest.Admin(t, "postgres").Exec(`CREATE DATABASE "` + d.opts.Database + `_squatted"`); err != nil {
					t.Fatal(err)
				}
				tests = append(tests, struct {
					name      string
					file      []byte
					opts      ImportOptions
					want      error
					sayings   string
					sequences bool
				}{"a database of that name outside the directory", fileOf(t, o, 2, nil), ImportOptions{As: "squatted"}, strategy.ErrTenantExists, "not in the directory", true})
			}
			for _, tt := range tests {
				rows, seqs := fingerprint(t, d.opts)
				_, err := Import(context.Background(), d.admin, bytes.NewReader(tt.file), tt.opts)
				if err == nil || tt.want != nil && !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.sayings) {
					t.Errorf("%s: Import = %v, want %v saying %q", tt.name, err, tt.want, tt.sayings)
				}
				gotRows, gotSeqs := fingerprint(t, d.opts)
				if gotRows != rows {
					t.Errorf("%s: the refused import changed the target:\nbefore:\n%s\nafter:\n%s", tt.name, rows, gotRows)
				}
				if gotSeqs != seqs && !tt.sequences {
					t.Errorf("%s: the refused import moved sequences:\nbefore: %s\nafter: %s", tt.name, seqs, gotSeqs)
				}
			}
			// The same file, undamaged, imports, under its own slug and
			// under one the deployment did not list.
			for _, as := range []string{"", "acme"} {
				res, err := Import(context.Background(), d.admin, bytes.NewReader(fileOf(t, o, 2, nil)), ImportOptions{As: as})
				if err != nil {
					t.Errorf("Import(tenant-2 --as %q, undamaged) = %v", as, err)
					continue
				}
				if e, err := d.admin.LookUpTenant(context.Background(), res.Account.Slug); err != nil || e.ID != res.Account.ID {
					t.Errorf("LookUpTenant(%s) after its import = %+v, %v; want id %d", res.Account.Slug, e, err, res.Account.ID)
				}
			}
		})
	}
}
