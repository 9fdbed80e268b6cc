package strategytest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
)

// ReportTenant is a tenant of projects projects with a task each, and a
// subtask in project p for each p in open (not complete) and in complete
// (complete), for the cross-tenant report's tests.
func ReportTenant(slug string, projects int, open, complete []int) *strategy.TenantData {
	d := &strategy.TenantData{
		Account: models.Account{Slug: slug, Name: "Account " + slug},
		Users:   []models.User{{Email: "a@" + slug, FirstName: "A", LastName: "B", Password: "x"}},
	}
	for p := range projects {
		d.Projects = append(d.Projects, models.Project{Name: fmt.Sprintf("p%d", p)})
		d.Tasks = append(d.Tasks, strategy.TaskData{Task: models.Task{Name: fmt.Sprintf("t%d", p)}, Project: p})
	}
	add := func(ps []int, done bool) {
		for _, p := range ps {
			d.Subtasks = append(d.Subtasks, strategy.SubtaskData{
				Subtask: models.Subtask{Name: fmt.Sprintf("s%d", len(d.Subtasks)), IsComplete: done}, Task: p})
		}
	}
	add(open, false)
	add(complete, true)
	return d
}

// ExpectedReport is the report over tenants worked out from their data
// alone: each tenant's subtasks not complete, the distinct projects of
// their tasks, ordered most open first and then by slug, written here
// rather than with strategy.SortOpenSubtasks so that a wrong order there
// shows.
func ExpectedReport(tenants ...*strategy.TenantData) []strategy.TenantOpenSubtasks {
	var out []strategy.TenantOpenSubtasks
	for _, d := range tenants {
		r := strategy.TenantOpenSubtasks{Slug: d.Account.Slug, Name: d.Account.Name}
		projects := map[int]bool{}
		for _, s := range d.Subtasks {
			if !s.IsComplete {
				r.OpenSubtasks++
				projects[d.Tasks[s.Task].Project] = true
			}
		}
		r.ProjectsWithOpenSubtasks = int64(len(projects))
		out = append(out, r)
	}
	for i := 1; i < len(out); i++ { // insertion sort: most open first, then slug
		for j := i; j > 0; j-- {
			a, b := out[j-1], out[j]
			if a.OpenSubtasks > b.OpenSubtasks || a.OpenSubtasks == b.OpenSubtasks && a.Slug < b.Slug {
				break
			}
			out[j-1], out[j] = b, a
		}
	}
	return out
}

// AllTenantsCtx is a context that asks for every tenant.
func AllTenantsCtx() context.Context { return models.NewContextForAllTenants(context.Background()) }

// testReportOpenSubtasks: the cross-tenant report gives every tenant,
// those with nothing open too, its open subtasks and the projects with
// any, most open first and then by slug (a tie here, which projects
// would break the other way), as worked out from the loaded data; it
// follows writes; and it refuses a context that does not ask for every
// tenant.
func testReportOpenSubtasks(t *testing.T, h Harness) {
	opts, admin, s := Deploy(t, h)
	ctx := context.Background()
	tenants := []*strategy.TenantData{
		ReportTenant("tenant-0", 3, []int{0, 0, 0}, []int{1, 2}), // 3 open in 1 project
		ReportTenant("tenant-1", 2, nil, []int{0, 1, 1, 0}),      // none open
		ReportTenant("tenant-2", 3, []int{0, 1, 2}, []int{2}),    // 3 open in 3 projects: after tenant-0, by slug
	}
	for _, d := range tenants {
		if err := admin.LoadTenant(ctx, d, true); err != nil {
			t.Fatalf("LoadTenant(%s): %v", d.Account.Slug, err)
		}
	}
	want := ExpectedReport(tenants...)
	if got := []string{want[0].Slug, want[1].Slug, want[2].Slug}; !slices.Equal(got, []string{"tenant-0", "tenant-2", "tenant-1"}) {
		t.Fatalf("the expected report is in order %v; the test's data is not what it was written for", got)
	}
	checkReport(t, h, s, "as loaded", want)

	// Reopen tenant-1's subtasks through the app, as the tenant: it now
	// leads, and the admin's own count agrees with the report.
	acct, err := s.TenantBySlug(ctx, "tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Tx(TenantCtx(acct), func(tx *gorm.DB) error {
		return tx.Model(&models.Subtask{}).Where("true").Update("is_complete", false).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	want = []strategy.TenantOpenSubtasks{{Slug: "tenant-1", Name: "Account tenant-1"}, want[0], want[1]}
	want[0].OpenSubtasks, want[0].ProjectsWithOpenSubtasks = countOpen(t, h, opts, acct)
	if want[0].OpenSubtasks != 4 || want[0].ProjectsWithOpenSubtasks != 2 {
		t.Fatalf("tenant-1 after reopening its subtasks: the admin counts %d open in %d projects, want 4 in 2", want[0].OpenSubtasks, want[0].ProjectsWithOpenSubtasks)
	}
	checkReport(t, h, s, "after tenant-1 reopened its subtasks", want)

	for name, ctx := range map[string]context.Context{
		"no tenant":  context.Background(),
		"a tenant's": TenantCtx(acct),
	} {
		rep, err := s.ReportOpenSubtasks(ctx, strategy.ReportOptions{})
		if !errors.Is(err, strategy.ErrNotAllTenants) || len(rep.Rows) != 0 {
			t.Errorf("ReportOpenSubtasks with %s context: %d rows, err %v; want none and ErrNotAllTenants", name, len(rep.Rows), err)
		}
	}
}

// checkReport compares s's report with want.
func checkReport(t *testing.T, h Harness, s strategy.Strategy, after string, want []strategy.TenantOpenSubtasks) {
	t.Helper()
	rep, err := s.ReportOpenSubtasks(AllTenantsCtx(), strategy.ReportOptions{})
	if err != nil {
		t.Fatalf("%s: ReportOpenSubtasks: %v", after, err)
	}
	if !reflect.DeepEqual(rep.Rows, want) {
		t.Errorf("%s: ReportOpenSubtasks rows\n%s\nwant\n%s", after, FormatReport(rep.Rows), FormatReport(want))
	}
	if len(rep.Unreachable) != 0 || !rep.Complete() {
		t.Errorf("%s: ReportOpenSubtasks left out %+v, want every tenant read", after, rep.Unreachable)
	}
	if rep.Strategy != h.Name || rep.Elapsed <= 0 {
		t.Errorf("%s: ReportOpenSubtasks says strategy %q, elapsed %s; want %q and a positive time", after, rep.Strategy, rep.Elapsed, h.Name)
	}
}

// countOpen counts tenant a's open subtasks and the projects with any as
// the admin, straight from the tables.
func countOpen(t *testing.T, h Harness, opts strategy.Options, a models.Account) (open, projects int64) {
	t.Helper()
	db := h.TenantDB(t, opts, a.Slug)
	query := `SELECT count(*), count(DISTINCT t.project_id) FROM subtasks s JOIN tasks t ON t.id = s.task_id WHERE NOT s.is_complete`
	if hasAccountID(t, db) {
		query += fmt.Sprintf(" AND s.account_id = %d AND t.account_id = %d", a.ID, a.ID)
	}
	if err := db.QueryRow(query).Scan(&open, &projects); err != nil {
		t.Fatal(err)
	}
	return open, projects
}

// FormatReport writes report rows one a line, for a failing test's
// message.
func FormatReport(rows []strategy.TenantOpenSubtasks) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %s (%s): %d open in %d projects\n", r.Slug, r.Name, r.OpenSubtasks, r.ProjectsWithOpenSubtasks)
	}
	if len(rows) == 0 {
		b.WriteString("  (none)\n")
	}
	return b.String()
}
