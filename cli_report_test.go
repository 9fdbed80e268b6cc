package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategytest"
)

// TestReportCommand runs `tenancy report` over a seeded deployment of
// each strategy: the table and the JSON must hold what the seed says, in
// order.
// In multidb, a tenant database dropped afterwards is listed with its
// reason, the others are printed, and the command exits 1.
func TestReportCommand(t *testing.T) {
	t.Parallel()
	const accounts = 3
	o := seed.DefaultOptions()
	o.Accounts, o.MaxProjects = accounts, 4
	var seeded []*strategy.TenantData
	for i := range accounts {
		a := seed.Generate(o, i, "")
		seeded = append(seeded, &a)
	}
	want := strategytest.ExpectedReport(seeded...)

	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, name, nil)
			for _, args := range [][]string{{"setup"}, {"seed", "--accounts", fmt.Sprint(accounts), "--max-projects", "4", "--quiet"}} {
				if out, err := runCmd(t, env, args...); err != nil {
					t.Fatalf("tenancy %v: %v\n%s", args, err, out)
				}
			}
			out, err := runCmd(t, env, "report")
			if err != nil {
				t.Fatalf("tenancy report: %v\n%s", err, out)
			}
			checkReportTable(t, out, name, want)

			out, err = runCmd(t, env, "report", "--json", "--timeout", "10s", "--concurrency", "2")
			if err != nil {
				t.Fatalf("tenancy report --json: %v\n%s", err, out)
			}
			var rep struct {
				Strategy    string                        `json:"strategy"`
				Complete    bool                          `json:"complete"`
				Rows        []strategy.TenantOpenSubtasks `json:"tenants"`
				Unreachable []strategy.UnreachableTenant
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("tenancy report --json printed something else than JSON: %v\n%s", err, out)
			}
			if rep.Strategy != name || !rep.Complete || len(rep.Unreachable) != 0 || !reflect.DeepEqual(rep.Rows, want) {
				t.Errorf("tenancy report --json: %+v\nwant strategy %s, complete, rows\n%s", rep, name, strategytest.FormatReport(want))
			}

			if name != strategy.MultiDB {
				return
			}
			database := env["PGDATABASE"] + "_tenant-1"
			strategytest.MustExec(t, pgtest.Admin(t, "postgres"), fmt.Sprintf(`DROP DATABASE %q WITH (FORCE)`, database))
			out, err = runCmd(t, env, "report")
			if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "1 of 3 tenants could not be read (tenant-1)") {
				t.Errorf("tenancy report with tenant-1's database dropped: err = %v (exit %d), want exit 1 naming tenant-1", err, exitCode(err))
			}
			for _, w := range []string{"not read (1), so missing above:", "tenant-1: its database is missing (run `tenancy setup`)"} {
				if !strings.Contains(out, w) {
					t.Errorf("tenancy report with tenant-1's database dropped: output lacks %q:\n%s", w, out)
				}
			}
			var others []strategy.TenantOpenSubtasks
			for _, r := range want {
				if r.Slug != "tenant-1" {
					others = append(others, r)
				}
			}
			checkReportTable(t, out, name, others)
		})
	}
}

// reportLine is a line of the report's table.
var reportLine = regexp.MustCompile(`(?m)^(tenant-\d+)  +(.*?)  +(\d+)  +(\d+)$`)

// checkReportTable checks the table in out: its title and header, and
// want's rows in order.
func checkReportTable(t *testing.T, out, name string, want []strategy.TenantOpenSubtasks) {
	t.Helper()
	header := regexp.MustCompile(`(?m)^TENANT +NAME +OPEN SUBTASKS  PROJECTS WITH OPEN SUBTASKS$`)
	if !strings.Contains(out, "open subtasks by tenant: "+name+", ") || !header.MatchString(out) {
		t.Errorf("tenancy report: no title or header in:\n%s", out)
	}
	var got []strategy.TenantOpenSubtasks
	for _, m := range reportLine.FindAllStringSubmatch(out, -1) {
		var r strategy.TenantOpenSubtasks
		r.Slug, r.Name = m[1], m[2]
		fmt.Sscan(m[3], &r.OpenSubtasks)
		fmt.Sscan(m[4], &r.ProjectsWithOpenSubtasks)
		got = append(got, r)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tenancy report's table:\n%s\nwant\n%s", strategytest.FormatReport(got), strategytest.FormatReport(want))
	}
}
