package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"tenancy/configs"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

// TestBackupRestore follows docs/backups.md for each strategy: a seeded
// deployment is dumped (its roles with pg_dumpall, each database with
// pg_dump in the custom format, as the admin), dropped entirely, restored
// (roles first, then pg_restore --create), and must then hold the data
// it was seeded with (read back through the strategy, as the server reads
// it), pass `tenancy check` (kept subtask counts included) and serve a
// tenant's page.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	progs := pgtest.ClientPrograms(t, "pg_dump", "pg_dumpall", "pg_restore", "psql")
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, name, nil)
			if out, err := runCmd(t, env, "setup"); err != nil {
				t.Fatalf("setup: %v\n%s", err, out)
			}
			out, err := runCmd(t, env, "seed", "--accounts", "3", "--max-projects", "4")
			if err != nil {
				t.Fatalf("seed: %v\n%s", err, out)
			}
			m := seedChecksum.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("seed printed no checksum:\n%s", out)
			}
			seeded := m[1]
			// The read-back must agree with seed before the backup, or an
			// equal checksum after the restore would prove nothing.
			if got, _ := dataChecksum(t, env); got != seeded {
				t.Fatalf("checksum read back from the seeded deployment = %s, seed printed %s", got, seeded)
			}
			// A tenant made after the seed, under a slug of its own (in
			// multidb a database the sample pattern does not name), must
			// come back too.
			if out, err := runCmd(t, env, "tenant", "create", "acme", "--name", "Acme"); err != nil {
				t.Fatalf("tenant create acme: %v\n%s", err, out)
			}
			before, _ := dataChecksum(t, env)
			if name == strategy.SingleSchema {
				appRoleDumpFails(t, progs, env)
			}

			dir := t.TempDir()
			databases := backupDeployment(t, progs, env, dir)
			if want := deploymentDatabases(name); len(databases) != want {
				t.Errorf("backup took %d databases (%v), want %d", len(databases), databases, want)
			}
			pgtest.Drop(t, env["PGDATABASE"], env["APP_DB_USER"], env["READER_DB_USER"])
			if out, err := runCmd(t, env, "check"); err == nil || !strings.Contains(out, "missing") {
				t.Fatalf("check after dropping the deployment: err %v, want findings of what is missing:\n%s", err, out)
			}

			restoreDeployment(t, progs, env, dir)

			out, err = runCmd(t, env, "check")
			if err != nil || !strings.Contains(out, "check: no findings") {
				t.Errorf("check after the restore: err %v, want no findings:\n%s", err, out)
			}
			// The counts come back from the dump, not from the triggers,
			// which pg_restore creates after the data: check compares them
			// with the subtasks (singleschema words it "agree", the others
			// "counts kept"), and the pages' totals below are read from them.
			if !strings.Contains(out, "subtask counts agree") && !strings.Contains(out, "counts kept") {
				t.Errorf("check after the restore did not confirm the kept subtask counts:\n%s", out)
			}
			got, subtasks := dataChecksum(t, env)
			if got != before {
				t.Errorf("checksum of the restored data = %s, %s before the backup", got, before)
			}
			if _, ok := subtasks["acme"]; !ok {
				t.Errorf("tenant acme, created after the seed, is missing after the restore (tenants: %v)", subtasks)
			}

			srv := startServe(t, env)
			o := seed.DefaultOptions()
			o.Accounts, o.MaxProjects = 3, 4
			for slug, n := range subtasks {
				var i int
				if _, err := fmt.Sscanf(slug, "tenant-%d", &i); err != nil {
					// acme has no user to sign in as: that its pages ask
					// for a sign-in, not 404, says it is served.
					if status, body := getFrom(t, srv.addr, slug+".localhost", "/subtasks/"); status != http.StatusOK || !strings.Contains(body, "Sign in") {
						t.Errorf("GET %s /subtasks/ after the restore = %d, want its sign-in page:\n%s", slug, status, body)
					}
					continue
				}
				cookie, err := signInSeeded(srv.addr, o, i)
				if err != nil {
					t.Errorf("after the restore: %v", err)
					continue
				}
				total, err := servedTotal(srv.addr, slug, cookie)
				if err != nil || total != n {
					t.Errorf("served %s after the restore: total %d, err %v; want %d subtasks", slug, total, err, n)
				}
			}
		})
	}
}

var seedChecksum = regexp.MustCompile(`checksum ([0-9a-f]{16})`)

// deploymentDatabases is how many databases a deployment of the test's
// three seeded tenants and acme has: multidb adds a database per tenant and the template
// new tenant databases are copied from.
func deploymentDatabases(strategyName string) int {
	if strategyName == strategy.MultiDB {
		return 1 + 4 + 1 // the base database, tenant-0..2 and acme, the template
	}
	return 1
}

// backupDeployment takes what docs/backups.md says, as the admin: the
// deployment's roles from pg_dumpall --roles-only (its own lines only: the
// test server is shared) into roles.sql, and each database of the
// deployment into <database>.dump. It returns the databases.
func backupDeployment(t *testing.T, progs map[string]string, env map[string]string, dir string) []string {
	t.Helper()
	database := env["PGDATABASE"]
	rows, err := pgtest.Admin(t, "postgres").Query(
		`SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $1 || '_') ORDER BY datname`, database)
	if err != nil {
		t.Fatal(err)
	}
	var databases []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		databases = append(databases, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := mustRun(t, progs["pg_dumpall"], "--roles-only", "--dbname", pgtest.DSN("", "", "postgres"))
	roles := deploymentRoles(all, database+"_", env["APP_DB_USER"], env["READER_DB_USER"])
	if !strings.Contains(roles, "CREATE ROLE "+env["APP_DB_USER"]+";") {
		t.Fatalf("roles.sql has no CREATE ROLE for the app role:\n%s", roles)
	}
	if err := os.WriteFile(filepath.Join(dir, "roles.sql"), []byte(roles), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, db := range databases {
		mustRun(t, progs["pg_dump"], "--format=custom", "--file", filepath.Join(dir, db+".dump"), "--dbname", pgtest.DSN("", "", db))
	}
	return databases
}

// restoreDeployment restores what backupDeployment took: the roles first
// (the dumps' owners, grants, policies and per-database role settings
// name them), then each database with pg_restore --create, stopping at
// the first error.
func restoreDeployment(t *testing.T, progs map[string]string, env map[string]string, dir string) {
	t.Helper()
	mustRun(t, progs["psql"], "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--file", filepath.Join(dir, "roles.sql"), "--dbname", pgtest.DSN("", "", "postgres"))
	dumps, err := filepath.Glob(filepath.Join(dir, "*.dump"))
	if err != nil || len(dumps) == 0 {
		t.Fatalf("no dumps in %s: %v", dir, err)
	}
	for _, f := range dumps {
		mustRun(t, progs["pg_restore"], "--create", "--exit-on-error", "--dbname", pgtest.DSN("", "", "postgres"), f)
	}
}

// roleLine is a line of pg_dumpall --roles-only about one role: its
// creation, its attributes and settings, or a membership in it.
var roleLine = regexp.MustCompile(`^(?:CREATE ROLE|ALTER ROLE|GRANT) "?([^" ;]+)"?[ ;]`)

// deploymentRoles keeps the lines of a pg_dumpall --roles-only output
// that are about the deployment's roles: those named with prefix, and
// named.
func deploymentRoles(all, prefix string, named ...string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(all, "\n") {
		m := roleLine.FindStringSubmatch(line)
		if m != nil && (strings.HasPrefix(m[1], prefix) || slices.Contains(named, m[1])) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// appRoleDumpFails proves docs/backups.md's warning: pg_dump as the app
// role, which row-level security filters, does not give a backup. It
// fails for the whole database; for a table the role may read in full,
// PostgreSQL refuses to let row-level security filter what pg_dump reads;
// and with --enable-row-security the dump "succeeds" without a row.
func appRoleDumpFails(t *testing.T, progs map[string]string, env map[string]string) {
	t.Helper()
	app := pgtest.DSN(env["APP_DB_USER"], "", env["PGDATABASE"])
	tests := []struct {
		args []string
		want string // in the error; empty: the dump succeeds
	}{
		{[]string{"--format=custom"}, "permission denied"},
		{[]string{"--data-only", "--table=subtask_counts"}, "query would be affected by row-level security policy for table \"subtask_counts\""},
		{[]string{"--data-only", "--table=subtask_counts", "--enable-row-security"}, ""},
	}
	for _, tt := range tests {
		out, errOut, err := runProgram(progs["pg_dump"], append(tt.args, "--dbname", app)...)
		if tt.want != "" {
			if err == nil || !strings.Contains(errOut, tt.want) {
				t.Errorf("pg_dump %v as the app role: err %v, stderr %q; want a failure saying %q", tt.args, err, errOut, tt.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("pg_dump %v as the app role: %v\n%s", tt.args, err, errOut)
		}
		// The COPY block must be there, and empty: a backup of nothing.
		copyLine := regexp.MustCompile(`(?m)^COPY public\.subtask_counts .* FROM stdin;\n\\\.$`)
		if !copyLine.MatchString(out) {
			t.Errorf("pg_dump %v as the app role: want the table's COPY block with no rows, got:\n%s", tt.args, out)
		}
	}
}

// dataChecksum reads every tenant's data back through the strategy, as
// the app role in a tenant transaction (whatever the strategy keeps it
// in), and combines it as seed does, so it equals the checksum seed
// printed for the same data. It also returns each tenant's subtasks.
func dataChecksum(t *testing.T, env map[string]string) (string, map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := configs.Load(pgtest.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	s, err := strategies.Open(ctx, cfg.Strategy)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Strategy.Strategy, err)
	}
	defer s.Close()
	tenants, err := s.Tenants(ctx)
	if err != nil {
		t.Fatalf("list tenants: %v", err)
	}
	// seed combines the accounts in the order of their index; tenants
	// seed does not make come after them, by slug.
	index := func(a models.Account) int {
		if i, ok := strategy.ParseSlug(a.Slug); ok {
			return i
		}
		return math.MaxInt
	}
	slices.SortFunc(tenants, func(a, b models.Account) int {
		return cmp.Or(cmp.Compare(index(a), index(b)), strings.Compare(a.Slug, b.Slug))
	})
	digests := make([]seed.Digest, 0, len(tenants))
	subtasks := make(map[string]int, len(tenants))
	for _, listed := range tenants {
		acct, err := s.TenantBySlug(ctx, listed.Slug)
		if err != nil {
			t.Fatalf("tenant %s: %v", listed.Slug, err)
		}
		d, err := readTenant(models.NewContextWithTenant(ctx, acct), s, acct)
		if err != nil {
			t.Fatalf("read tenant %s back: %v", acct.Slug, err)
		}
		digests = append(digests, seed.AccountDigest(d))
		subtasks[acct.Slug] = len(d.Subtasks)
	}
	return seed.Checksum(digests), subtasks
}

// readTenant reads acct's rows in id order (the order seed wrote them in)
// and turns parent ids into indexes, as seed generates them.
func readTenant(ctx context.Context, s strategy.Strategy, acct models.Account) (*strategy.TenantData, error) {
	d := &strategy.TenantData{Account: acct}
	var (
		projects []models.Project
		tasks    []models.Task
		subtasks []models.Subtask
	)
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		for _, rows := range []any{&d.Users, &projects, &tasks, &subtasks} {
			if err := tx.Order("id").Find(rows).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.Projects = projects
	projectAt := make(map[int64]int, len(projects))
	for i, p := range projects {
		projectAt[p.ID] = i
	}
	taskAt := make(map[int64]int, len(tasks))
	for i, tk := range tasks {
		p, ok := projectAt[tk.ProjectID]
		if !ok {
			return nil, fmt.Errorf("task %d: project %d is not the tenant's", tk.ID, tk.ProjectID)
		}
		taskAt[tk.ID] = i
		d.Tasks = append(d.Tasks, strategy.TaskData{Task: tk, Project: p})
	}
	for _, st := range subtasks {
		i, ok := taskAt[st.TaskID]
		if !ok {
			return nil, fmt.Errorf("subtask %d: task %d is not the tenant's", st.ID, st.TaskID)
		}
		d.Subtasks = append(d.Subtasks, strategy.SubtaskData{Subtask: st, Task: i})
	}
	return d, nil
}

// servedTotal asks the server at addr for slug's first page, as JSON, and
// returns the total it says the tenant has.
func servedTotal(addr, slug string, cookie *http.Cookie) (int, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/subtasks/", nil)
	if err != nil {
		return 0, err
	}
	req.Host = slug + ".localhost"
	req.Header.Set("Accept", "application/json")
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var page strategy.SubtaskPage
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return 0, err
	}
	for _, r := range page.Rows {
		if r.AccountSlug != slug {
			return 0, fmt.Errorf("a row of %s served to %s", r.AccountSlug, slug)
		}
	}
	return int(page.Total), nil
}

// mustRun runs a program and returns its standard output; it fails the
// test with the standard error if the program fails.
func mustRun(t *testing.T, program string, args ...string) string {
	t.Helper()
	out, errOut, err := runProgram(program, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(program), strings.Join(redact(args), " "), err, errOut)
	}
	return out
}

func runProgram(program string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// redact hides a connection URL's password in a failure message.
func redact(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.HasPrefix(a, "postgres://") {
			out[i] = regexp.MustCompile(`:[^:@/]*@`).ReplaceAllString(a, ":***@")
		}
	}
	return out
}

// TestDataOnlyRestoreAndTheKeptCounts shows what a data-only restore into
// the tables `tenancy setup` made does to the trigger-kept subtask counts
// (singleschema; docs/backups.md): with the triggers enabled it fails
// and writes nothing; with them disabled the counts are what the dump
// holds, right when the dump's counts are restored too and wrong (a check
// finding) when they are left out.
func TestDataOnlyRestoreAndTheKeptCounts(t *testing.T) {
	t.Parallel()
	progs := pgtest.ClientPrograms(t, "pg_dump", "pg_restore")
	env := pgtest.Env(t, strategy.SingleSchema, nil)
	if out, err := runCmd(t, env, "setup"); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	out, err := runCmd(t, env, "seed", "--accounts", "2", "--max-projects", "3")
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	m := seedChecksum.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("seed printed no checksum:\n%s", out)
	}
	database := env["PGDATABASE"]
	dump := filepath.Join(t.TempDir(), database+".dump")
	mustRun(t, progs["pg_dump"], "--format=custom", "--file", dump, "--dbname", pgtest.DSN("", "", database))
	if _, err := pgtest.Admin(t, "postgres").Exec(fmt.Sprintf(`DROP DATABASE %q WITH (FORCE)`, database)); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, env, "setup"); err != nil {
		t.Fatalf("setup of an empty database: %v\n%s", err, out)
	}
	db := pgtest.Admin(t, database)

	tenantTables := []string{"--table=accounts", "--table=users", "--table=projects", "--table=tasks", "--table=subtasks"}
	withCounts := append(slices.Clone(tenantTables), "--table=subtask_counts")
	tests := []struct {
		name     string
		args     []string
		restored bool   // pg_restore succeeds
		finding  string // check's finding after it; empty: none
	}{
		{"triggers enabled", withCounts, false, ""},
		{"triggers disabled, counts restored", append([]string{"--disable-triggers"}, withCounts...), true, ""},
		{"triggers disabled, counts left out", append([]string{"--disable-triggers"}, tenantTables...), true, "FINDING [subtask-counts-drifted]"},
	}
	for _, tt := range tests {
		if _, err := db.Exec(`TRUNCATE accounts, users, projects, tasks, subtasks, subtask_counts`); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--data-only", "--single-transaction", "--exit-on-error", "--dbname", pgtest.DSN("", "", database)}, tt.args...)
		_, errOut, err := runProgram(progs["pg_restore"], append(args, dump)...)
		if (err == nil) != tt.restored {
			t.Errorf("%s: pg_restore err %v, want success %v\n%s", tt.name, err, tt.restored, errOut)
			continue
		}
		if !tt.restored {
			var accounts int
			if err := db.QueryRow(`SELECT count(*) FROM accounts`).Scan(&accounts); err != nil || accounts != 0 {
				t.Errorf("%s: %d accounts (err %v) after a failed single-transaction restore, want 0", tt.name, accounts, err)
			}
			continue
		}
		out, err := runCmd(t, env, "check")
		if tt.finding == "" {
			if err != nil || !strings.Contains(out, "subtask counts agree") {
				t.Errorf("%s: check: err %v, want no findings and the counts agreeing:\n%s", tt.name, err, out)
			}
			if got, _ := dataChecksum(t, env); got != m[1] {
				t.Errorf("%s: checksum of the restored data = %s, seeded %s", tt.name, got, m[1])
			}
		} else if err == nil || !strings.Contains(out, tt.finding) {
			t.Errorf("%s: check: err %v, want %s:\n%s", tt.name, err, tt.finding, out)
		}
	}
}
