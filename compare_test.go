package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tenancy/configs"
	"tenancy/internal/compare"
	"tenancy/internal/pgsettings"
	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// TestCompareWritesTheReport runs the whole command on a few accounts and a
// second of load per page: every strategy set up, seeded, served by a real
// server process, probed and dropped. It checks the report's structure and
// that the isolation probe ran and found no leak; it asserts no timings.
func TestCompareWritesTheReport(t *testing.T) {
	for _, generator := range []string{"builtin", "wrk"} {
		t.Run(generator, func(t *testing.T) {
			t.Parallel()
			if generator == "wrk" {
				if _, err := exec.LookPath("wrk"); err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatal("wrk is not installed; `make test` installs it (apt-get install wrk)")
					}
					t.Skip("wrk is not installed")
				}
			}
			compareAndCheck(t, generator)
		})
	}
}

func compareAndCheck(t *testing.T, generator string) {
	env := pgtest.Env(t, "singleschema", nil)
	prefix := env["PGDATABASE"]
	dir := t.TempDir()
	// The built-in generator runs a small sweep (the charts need two
	// sizes); wrk one size.
	sizes := map[string]string{"builtin": "2,3", "wrk": "3"}[generator]
	// The three strategies by name: the report is checked for their three
	// columns (TestCompareOnCitus runs the citus column).
	out, err := runCmd(t, env, "compare", "--strategies", "multidb,multischema,singleschema", "--tenants", sizes, "--duration", "1s", "--connections", "4", "--generator", generator, "--out", filepath.Join(dir, "report"), "--quiet")
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, out)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	report := string(md)
	// One size's detail is "Results"; a sweep's says which size it shows.
	results := map[string]string{"builtin": "## Detail at 3 tenants", "wrk": "## Results"}[generator]
	for _, want := range []string{"## Machine", results, "## Isolation probe", "## Reading the numbers",
		"| figure | multidb | multischema | singleschema |", "setup + migrate", "database size", "PostgreSQL connections held under load",
		"server RSS before → after", "tenant page, any page: throughput", "largest tenant, last page: p50 / p90 / p99",
		"all tenants, middle page: throughput", "Cores: ", "PostgreSQL: PostgreSQL", map[string]string{"builtin": "built-in (Go", "wrk": "wrk "}[generator]} {
		if !strings.Contains(report, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// The sweep's figures: each a table with a column per size, the
	// schema change named, the cross-tenant report timed in every
	// strategy (no "n/a" there), and charts against tenants when there
	// are two sizes.
	sweep := []string{"## Many tenants", "### Setup and seed", "### Catalog size", "### Migrations", "subtask_priority.sql",
		"### PostgreSQL backends' memory", "### Tenant pages: uniform and Zipf traffic", "s = 1.1", "### A cold tenant",
		"### Cross-tenant report", "### Where the time goes", "| 3 tenants |"}
	if generator == "builtin" {
		sweep = append(sweep, "| 2 tenants | 3 tenants |", "## Detail at 3 tenants")
	}
	for _, want := range sweep {
		if !strings.Contains(strings.ReplaceAll(report, `\_`, "_"), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if section := report[strings.Index(report, "### Cross-tenant report"):]; strings.Contains(section[:strings.Index(section[4:], "###")+4], "n/a") {
		t.Errorf("the cross-tenant report was not measured in some strategy:\n%s", section[:strings.Index(section[4:], "###")+4])
	}
	if generator == "builtin" && !strings.Contains(string(html), "log scale") {
		t.Errorf("report.html has no log-scale chart against tenants")
	}
	// The probe ran in every strategy, checked rows, and found no leak.
	rows := regexp.MustCompile(`(?m)^\| rows checked \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$`).FindStringSubmatch(report)
	if rows == nil {
		t.Fatalf("report.md has no rows-checked line for every strategy:\n%s", report)
	}
	for _, n := range rows[1:] {
		if v, _ := strconv.Atoi(strings.ReplaceAll(n, ",", "")); v == 0 {
			t.Errorf("the isolation probe checked no rows: %q", rows[0])
		}
	}
	// The loads that write ran, with reads and writes apart.
	if strings.Contains(report, "skipped: the server has no JSON write API") {
		t.Errorf("compare skipped the loads that write: the server has a write API")
	}
	for _, want := range []string{"| mixed 90% reads / 10% writes: reads / writes |", "| mixed 90% reads / 10% writes: writes p50 / p90 / p99 |",
		"| one tenant's writers: reads / writes |", "| writers, uniform tenants: reads / writes |"} {
		if !strings.Contains(report, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// Every load was answered: a load of 404s or 503s would be measured
	// too, and the report marks it "(N of M failed)".
	if strings.Contains(report, " failed)") || strings.Contains(report, "| 0 req/s") {
		t.Errorf("a load had failed requests or none at all:\n%s", report)
	}
	if !regexp.MustCompile(`(?m)^\| leaked rows \| 0 — PASS \| 0 — PASS \| 0 — PASS \|$`).MatchString(report) {
		t.Errorf("report.md does not show 0 leaked rows in every strategy:\n%s", report)
	}
	page := string(html)
	if strings.Count(page, "<svg") < 3 || !strings.Contains(page, "Isolation probe") {
		t.Errorf("report.html lacks its charts or the probe")
	}
	for _, external := range []string{"<script src", "<link ", "@import", "url(http"} {
		if strings.Contains(page, external) {
			t.Errorf("report.html loads %q: it must be self-contained", external)
		}
	}
	// Nothing the run created is left behind.
	var left int
	err = pgtest.Admin(t, "postgres").QueryRow(`SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)`, prefix+"_").Scan(&left)
	if err != nil || left > 0 {
		t.Errorf("databases named %s_* left behind: %d (err %v)", prefix, left, err)
	}
	err = pgtest.Admin(t, "postgres").QueryRow(`SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)`, prefix+"_cmp").Scan(&left)
	if err != nil || left > 0 {
		t.Errorf("roles named %s_cmp* left behind: %d (err %v)", prefix, left, err)
	}
}

// TestCompareWarnsOfTooFewConnections reads the test server's
// max_connections as compare and bench do before they start: a warning
// with the statement that raises it when the run wants more, none when it
// does not, and none (the command's own error follows) when the server
// cannot be read.
func TestCompareWarnsOfTooFewConnections(t *testing.T) {
	env := pgtest.Env(t, "multidb", nil)
	cfg, err := configs.Load(pgtest.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	unreachable := cfg.Strategy
	unreachable.Port = pgtest.FreePort(t)
	for _, tc := range []struct {
		name    string
		tenants int
		opts    strategy.Options
		want    []string // empty: no warning
	}{
		{"more tenants than any test server allows", 10000, cfg.Strategy,
			[]string{"compare: warning: PostgreSQL's max_connections is ", "multidb with 10000 tenants under load wants about 26700", "ALTER SYSTEM SET max_connections = 26700"}},
		{"a few tenants", 3, cfg.Strategy, nil},
		{"no server", 10000, unreachable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			warnOfServer(context.Background(), &out, "compare", tc.opts, func(s pgsettings.Server) string { return s.MultiDBWarning(tc.tenants) })
			if len(tc.want) == 0 && out.Len() > 0 {
				t.Errorf("warnOfServer(%d tenants) printed %q, want nothing", tc.tenants, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("warnOfServer(%d tenants) printed %q, want %q in it", tc.tenants, out.String(), w)
				}
			}
		})
	}
}

// TestCompareCleansUpWhenInterrupted stops a sweep part-way, as Ctrl-C
// does (main turns the signal into a cancelled context): the command
// returns an error and leaves no database or role behind.
func TestCompareCleansUpWhenInterrupted(t *testing.T) {
	t.Parallel()
	for _, after := range []time.Duration{1500 * time.Millisecond, 6 * time.Second} {
		t.Run(after.String(), func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, "singleschema", nil)
			prefix := env["PGDATABASE"]
			ctx, cancel := context.WithTimeout(context.Background(), after)
			defer cancel()
			var out bytes.Buffer
			err := run(ctx, []string{"compare", "--tenants", "2,3", "--duration", "2s", "--connections", "2", "--generator", "builtin",
				"--out", filepath.Join(t.TempDir(), "report"), "--quiet"}, pgtest.Getenv(env), &out, &out)
			if err == nil {
				t.Fatalf("compare interrupted after %s returned no error:\n%s", after, out.String())
			}
			var left int
			admin := pgtest.Admin(t, "postgres")
			if err := admin.QueryRow(`SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)`, prefix+"_").Scan(&left); err != nil || left > 0 {
				t.Errorf("interrupted after %s: databases named %s_* left behind: %d (err %v)", after, prefix, left, err)
			}
			if err := admin.QueryRow(`SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)`, prefix+"_cmp").Scan(&left); err != nil || left > 0 {
				t.Errorf("interrupted after %s: roles named %s_cmp* left behind: %d (err %v)", after, prefix, left, err)
			}
		})
	}
}

// TestCompareOnCitus runs compare with the citus column beside
// singleschema on two tenants: compare starts a Citus coordinator and two
// workers of its own, sets up, seeds (the run checks both columns got the
// same checksum), loads and probes there, reports the CPU time per
// request of each part, and removes the nodes; interrupted (as Ctrl-C
// does) once the nodes run, and under load, it removes them too.
func TestCompareOnCitus(t *testing.T) {
	t.Parallel()
	if err := compare.CitusAvailable(); err != nil {
		pgtest.Need(t, "compare's citus column: "+err.Error()+"; `make citus` installs it")
	}
	for _, tc := range []struct {
		name string
		// interruptAt cancels the run when its output first holds this;
		// "": it runs to the end.
		interruptAt string
	}{
		{"end to end", ""},
		{"interrupted once the nodes run", "setup: creating"},
		{"interrupted under load", "load: tenant page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, "singleschema", nil)
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &watchedOutput{marker: tc.interruptAt, reached: cancel}
			strategies := "singleschema,citus"
			if tc.interruptAt != "" {
				strategies = "citus"
			}
			err := run(ctx, []string{"compare", "--tenants", "2", "--duration", "500ms", "--connections", "2", "--generator", "builtin",
				"--strategies", strategies, "--out", filepath.Join(dir, "report")}, pgtest.Getenv(env), out, out)
			output := out.String()
			switch {
			case tc.interruptAt == "" && err != nil:
				t.Fatalf("compare: %v\n%s", err, output)
			case tc.interruptAt != "" && err == nil:
				t.Fatalf("compare interrupted at %q returned no error:\n%s", tc.interruptAt, output)
			}
			// Every node's directory is gone, the postmasters with them.
			m := regexp.MustCompile(`their directories: (.+)`).FindStringSubmatch(output)
			if m == nil {
				t.Fatalf("compare did not say where the Citus nodes were:\n%s", output)
			}
			for _, d := range strings.Fields(m[1]) {
				if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a Citus node's directory %s is left behind (%v)", d, err)
				}
			}
			if tc.interruptAt != "" {
				return
			}
			md, err := os.ReadFile(filepath.Join(dir, "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			report := strings.ReplaceAll(string(md), `\_`, "_")
			for _, want := range []string{"| figure | singleschema | citus |", "Citus (the citus column): Citus ",
				"## Where the time goes on Citus", "all ran on this machine's", "| CPU per request, citus |",
				"n/a (on Citus the tables are distributed by a later migration (00009)"} {
				if !strings.Contains(report, want) {
					t.Errorf("report.md lacks %q", want)
				}
			}
			if !regexp.MustCompile(`(?m)^\| leaked rows \| 0 — PASS \| 0 — PASS \|$`).MatchString(report) {
				t.Errorf("report.md does not show 0 leaked rows in both columns:\n%s", report)
			}
			// The tenant pages and the writes were served on Citus.
			for _, kind := range []string{"tenant page, any page", "tenant page, Zipf tenants", "mixed 90% reads / 10% writes", "largest tenant, last page"} {
				// The citus column only: in half a second on a loaded
				// machine the other may see no request of a slow load.
				row := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(kind) + `: throughput \|.*\| ([^|]*) \|$`).FindStringSubmatch(report)
				if row == nil || strings.Contains(row[1], "failed") || strings.HasPrefix(row[1], "0 req/s") {
					t.Errorf("%s on Citus: %q, want every request answered", kind, row)
				}
			}
			// Every part used some CPU time under the uniform load: the
			// meter read the nodes' processes, not others.
			row := regexp.MustCompile(`(?m)^\| tenant page, any page \| (.*) \|$`).FindStringSubmatch(report)
			if row == nil {
				t.Fatalf("report.md has no CPU row for the uniform load:\n%s", report)
			}
			cells := strings.Split(row[1], " | ")
			for i, part := range []string{"coordinator", "workers", "tenancy server", "load generator"} {
				if cells[i] == "0 s" || cells[i] == "—" {
					t.Errorf("CPU per request of the %s = %q, want some", part, cells[i])
				}
			}
		})
	}
}

// watchedOutput is a command's output that calls reached once it first
// holds marker.
type watchedOutput struct {
	mu      sync.Mutex
	b       bytes.Buffer
	marker  string
	reached func()
	done    bool
}

func (w *watchedOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if w.marker != "" && !w.done && strings.Contains(w.b.String(), w.marker) {
		w.done = true
		w.reached()
	}
	return n, err
}

func (w *watchedOutput) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestCompareCitusColumnWhenCitusIsMissing: without Citus, the default
// list leaves the column out saying so in one line, and a list that
// names it is an error.
func TestCompareCitusColumnWhenCitusIsMissing(t *testing.T) {
	missing := errors.New("Citus is not installed for the PostgreSQL in /usr/lib/postgresql/15/bin")
	all := compare.Columns()
	for _, tc := range []struct {
		name    string
		list    []string
		named   bool
		missing error
		want    []string
		wantErr bool
		said    string
	}{
		{"installed, by default", all, false, nil, all, false, ""},
		{"installed, named", []string{"citus"}, true, nil, []string{"citus"}, false, ""},
		{"missing, by default", all, false, missing, strategy.Names(), false, "compare: no citus column: Citus is not installed"},
		{"missing, named", []string{"singleschema", "citus"}, true, missing, nil, true, ""},
		{"missing, not asked for", []string{"singleschema"}, true, missing, []string{"singleschema"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			before := slices.Clone(tc.list)
			got, err := withCitus(tc.list, tc.named, tc.missing, &out)
			if !slices.Equal(tc.list, before) {
				t.Errorf("withCitus changed the caller's list to %v", tc.list)
			}
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Errorf("withCitus(%v, named %v) = %v, %v; want %v, error %v", tc.list, tc.named, got, err, tc.want, tc.wantErr)
			}
			if tc.wantErr && (err == nil || !strings.Contains(err.Error(), "make citus")) {
				t.Errorf("withCitus error %v does not say how to get Citus", err)
			}
			if said := out.String(); tc.said == "" && said != "" || !strings.HasPrefix(said, tc.said) || strings.Count(said, "\n") > 1 {
				t.Errorf("withCitus printed %q, want one line starting %q (or nothing)", said, tc.said)
			}
		})
	}
}
