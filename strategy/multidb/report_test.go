package multidb_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/multidb"
	"tenancy/strategy/strategytest"
)

// reportDeployment is a multidb deployment of three tenants loaded for the
// report (tenant-i in database i), with a report read once already, so
// that every tenant's pool is open and its database audited: what breaks
// afterwards breaks under a warm server.
func reportDeployment(t *testing.T) (strategy.Options, strategy.Strategy, []*strategy.TenantData) {
	t.Helper()
	opts, admin, s := strategytest.Deploy(t, multidb.Harness())
	tenants := []*strategy.TenantData{
		strategytest.ReportTenant("tenant-0", 2, []int{0, 1}, []int{1}),
		strategytest.ReportTenant("tenant-1", 2, []int{0, 0, 0}, nil),
		strategytest.ReportTenant("tenant-2", 1, []int{0}, []int{0}),
	}
	for _, d := range tenants {
		if err := admin.LoadTenant(context.Background(), d, true); err != nil {
			t.Fatalf("LoadTenant(%s): %v", d.Account.Slug, err)
		}
	}
	rep, err := s.ReportOpenSubtasks(strategytest.AllTenantsCtx(), strategy.ReportOptions{})
	if err != nil || !rep.Complete() || !reflect.DeepEqual(rep.Rows, strategytest.ExpectedReport(tenants...)) {
		t.Fatalf("the report before anything broke: %v, unreachable %+v, rows\n%s", err, rep.Unreachable, strategytest.FormatReport(rep.Rows))
	}
	return opts, s, tenants
}

// TestReportListsTenantsItCannotReach breaks tenant-1's database in each
// way a tenant database can be out of reach while the server and the
// other tenants are fine: the report still answers, with the others'
// rows, and lists tenant-1 with a reason that says what to do and holds
// no database error text.
func TestReportListsTenantsItCannotReach(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// breakDB returns the statements that break database (of
		// tenant-1), and the database to run them in, as the admin.
		breakDB func(opts strategy.Options, database string) (in string, stmts []string)
		reason  string // in the reason given
	}{
		{"dropped", func(_ strategy.Options, db string) (string, []string) {
			return "postgres", []string{fmt.Sprintf(`DROP DATABASE %q WITH (FORCE)`, db)}
		}, "missing (run `tenancy setup`)"},
		{"refusing connections", func(_ strategy.Options, db string) (string, []string) {
			return "postgres", []string{
				fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, db),
				fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'`, db),
			}
		}, "does not accept connections"},
		{"CONNECT revoked", func(o strategy.Options, db string) (string, []string) {
			return "postgres", []string{
				fmt.Sprintf(`REVOKE CONNECT ON DATABASE %q FROM %q`, db, o.AppUser),
				fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'`, db),
			}
		}, "lacks a privilege"},
		{"account gone", func(_ strategy.Options, db string) (string, []string) {
			return db, []string{`TRUNCATE accounts CASCADE`}
		}, "no account yet (run `tenancy seed`)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts, s, tenants := reportDeployment(t)
			in, stmts := tt.breakDB(opts, opts.TenantDatabase(1))
			strategytest.MustExec(t, pgtest.Admin(t, in), stmts...)

			rep, err := s.ReportOpenSubtasks(strategytest.AllTenantsCtx(), strategy.ReportOptions{})
			if err != nil {
				t.Fatalf("ReportOpenSubtasks with tenant-1's database %s: %v; want the others reported", tt.name, err)
			}
			if want := strategytest.ExpectedReport(tenants[0], tenants[2]); !reflect.DeepEqual(rep.Rows, want) {
				t.Errorf("rows with tenant-1's database %s:\n%swant\n%s", tt.name, strategytest.FormatReport(rep.Rows), strategytest.FormatReport(want))
			}
			checkUnreachable(t, rep, []string{"tenant-1"}, tt.reason)
		})
	}
}

// checkUnreachable checks rep lists exactly slugs as unreachable, each
// with a reason containing reason, an error for the log, and no database
// error text where a user may see it.
func checkUnreachable(t *testing.T, rep strategy.OpenSubtasksReport, slugs []string, reason string) {
	t.Helper()
	var got []string
	for _, u := range rep.Unreachable {
		got = append(got, u.Slug)
		if !strings.Contains(u.Reason, reason) || u.Err == nil {
			t.Errorf("%s unreachable: reason %q, err %v; want a reason saying %q, and the error", u.Slug, u.Reason, u.Err, reason)
		}
		// A database's error text, or the deployment's database names
		// (every test deployment's start with "tt_"), are not for users.
		for _, leak := range []string{"SQLSTATE", "ERROR", "tt_"} {
			if strings.Contains(u.Reason, leak) {
				t.Errorf("%s unreachable: reason %q shows %q", u.Slug, u.Reason, leak)
			}
		}
		t.Logf("%s: %s (%v)", u.Slug, u.Reason, u.Err)
	}
	if !reflect.DeepEqual(got, slugs) || rep.Complete() {
		t.Errorf("unreachable = %v (complete %v), want %v", got, rep.Complete(), slugs)
	}
}

// TestReportKeepsToItsTimeBudget locks tenants' subtasks from another
// session, so that reading them waits: the report must come back within
// its budget (plus slack for a busy machine), list the locked tenants as
// not read in time, report the others, and leave no query of its own
// waiting on the server behind the lock. Several locked tenants read one
// after another (concurrency 1) share the one budget: it bounds the whole
// report, not each tenant.
func TestReportKeepsToItsTimeBudget(t *testing.T) {
	t.Parallel()
	const budget, slack = time.Second, 750 * time.Millisecond
	tests := []struct {
		name        string
		locked      []int
		concurrency int
	}{
		{"one tenant locked", []int{1}, 0},
		{"every tenant locked, one at a time", []int{0, 1, 2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, s, tenants := reportDeployment(t)
			var want []*strategy.TenantData
			var unreachable []string
			release := map[int]func(){}
			for i, d := range tenants {
				if slices.Contains(tt.locked, i) {
					release[i] = lockSubtasks(t, o.TenantDatabase(i))
					unreachable = append(unreachable, d.Account.Slug)
				} else {
					want = append(want, d)
				}
			}

			type answer struct {
				rep strategy.OpenSubtasksReport
				err error
			}
			answered := make(chan answer, 1)
			start := time.Now()
			go func() {
				rep, err := s.ReportOpenSubtasks(strategytest.AllTenantsCtx(), strategy.ReportOptions{Timeout: budget, Concurrency: tt.concurrency})
				answered <- answer{rep, err}
			}()
			var a answer
			select {
			case a = <-answered:
			case <-time.After(budget + 10*time.Second):
				t.Fatalf("ReportOpenSubtasks with tenants %v locked has not returned after %s; its budget is %s", tt.locked, time.Since(start), budget)
			}
			took := time.Since(start)
			rep, err := a.rep, a.err
			if err != nil {
				t.Fatalf("ReportOpenSubtasks with tenants %v locked: %v; want them listed and the others reported", tt.locked, err)
			}
			if took > budget+slack || rep.Elapsed > budget+slack {
				t.Errorf("ReportOpenSubtasks took %s (says %s), want at most its budget %s + %s", took, rep.Elapsed, budget, slack)
			}
			if took < budget*8/10 {
				t.Errorf("ReportOpenSubtasks took %s with tenants locked; it cannot have waited for them within a budget of %s", took, budget)
			}
			t.Logf("%s: report in %s", tt.name, took)
			if w := strategytest.ExpectedReport(want...); !reflect.DeepEqual(rep.Rows, w) {
				t.Errorf("rows:\n%swant\n%s", strategytest.FormatReport(rep.Rows), strategytest.FormatReport(w))
			}
			checkUnreachable(t, rep, unreachable, "time budget")

			// PostgreSQL itself ended the reads (statement_timeout): none
			// of the app role's is still queued behind a lock.
			admin := pgtest.Admin(t, "postgres")
			var waiting int
			err = admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'`, o.AppUser).Scan(&waiting)
			if err != nil {
				t.Fatal(err)
			}
			if waiting != 0 {
				t.Errorf("%d of the report's reads still wait behind the lock after it returned; want none", waiting)
			}

			for _, r := range release {
				r()
			}
			rep, err = s.ReportOpenSubtasks(strategytest.AllTenantsCtx(), strategy.ReportOptions{Timeout: budget})
			if err != nil || !rep.Complete() || !reflect.DeepEqual(rep.Rows, strategytest.ExpectedReport(tenants...)) {
				t.Errorf("the report once the locks are gone: %v, unreachable %+v, rows\n%s", err, rep.Unreachable, strategytest.FormatReport(rep.Rows))
			}
		})
	}
}

// lockSubtasks takes an ACCESS EXCLUSIVE lock on subtasks in database, as
// the admin, in a transaction that stays open until the returned function
// (or the test's end) rolls it back.
func lockSubtasks(t *testing.T, database string) func() {
	t.Helper()
	ctx := context.Background()
	conn, err := pgtest.Admin(t, database).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`LOCK TABLE subtasks IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	done := false
	release := func() {
		if !done {
			done = true
			_ = tx.Rollback()
			_ = conn.Close()
		}
	}
	t.Cleanup(release)
	return release
}
