package strategy

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// ErrNotAllTenants: cross-tenant work (Strategy.ReportOpenSubtasks) was
// given a context that does not explicitly ask for every tenant
// (models.NewContextForAllTenants), such as a tenant's own request.
var ErrNotAllTenants = errors.New("cross-tenant work needs the all-tenants context")

// DefaultReportTimeout is the time a cross-tenant report gets unless
// ReportOptions.Timeout says otherwise: well inside a web request's
// database time (handlers.DefaultRequestTimeout, 10 s).
const DefaultReportTimeout = 5 * time.Second

// ReportOptions bound a cross-tenant report.
type ReportOptions struct {
	// Timeout bounds the whole report (DefaultReportTimeout when zero).
	// In multidb, tenants not read within it are listed in
	// OpenSubtasksReport.Unreachable and the others are reported; in
	// singleschema and multischema, which read every tenant in one
	// statement (or a few), running out of it fails the report.
	Timeout time.Duration
	// Concurrency is how many tenant databases multidb reads at once
	// (when zero, half its connection budget, so that tenants' own
	// requests keep the other half; never more than the budget). The
	// other strategies ignore it.
	Concurrency int
}

// TimeoutOrDefault is o.Timeout, or DefaultReportTimeout when it is not
// set.
func (o ReportOptions) TimeoutOrDefault() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultReportTimeout
}

// OpenSubtasksReport is, for every tenant, its open (is_complete = false)
// subtasks and how many of its projects have any, as
// Strategy.ReportOpenSubtasks returns it.
type OpenSubtasksReport struct {
	// Strategy names the strategy that made the report.
	Strategy string
	// Rows has one entry per tenant read, tenants with no open subtask
	// included, in SortOpenSubtasks order.
	Rows []TenantOpenSubtasks
	// Unreachable lists the tenants that could not be read (multidb: a
	// tenant database missing, refusing connections or too slow;
	// multischema: a schema missing), by slug.
	Unreachable []UnreachableTenant
	// Elapsed is how long the report took.
	Elapsed time.Duration
}

// TenantOpenSubtasks is one tenant's line of an OpenSubtasksReport.
type TenantOpenSubtasks struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
	// OpenSubtasks counts the tenant's subtasks with is_complete false.
	OpenSubtasks int64 `json:"open_subtasks"`
	// ProjectsWithOpenSubtasks counts the tenant's projects that have at
	// least one of them.
	ProjectsWithOpenSubtasks int64 `json:"projects_with_open_subtasks"`
}

// UnreachableTenant is a tenant a report could not read.
type UnreachableTenant struct {
	Slug string `json:"slug"`
	// Reason says what happened and what to do, in words safe to show a
	// user: it never holds a database's error text.
	Reason string `json:"reason"`
	// Err is the error itself, for the log.
	Err error `json:"-"`
}

// Complete reports whether every tenant was read.
func (r OpenSubtasksReport) Complete() bool { return len(r.Unreachable) == 0 }

// MarshalJSON writes the report as the web page's and `tenancy report
// --json`'s answer: {"strategy", "complete", "elapsed_ms", "tenants" (the
// rows), "unreachable"}, with empty lists as [] rather than null.
func (r OpenSubtasksReport) MarshalJSON() ([]byte, error) {
	rows, unreachable := r.Rows, r.Unreachable
	if rows == nil {
		rows = []TenantOpenSubtasks{}
	}
	if unreachable == nil {
		unreachable = []UnreachableTenant{}
	}
	return json.Marshal(struct {
		Strategy    string               `json:"strategy"`
		Complete    bool                 `json:"complete"`
		ElapsedMS   float64              `json:"elapsed_ms"`
		Rows        []TenantOpenSubtasks `json:"tenants"`
		Unreachable []UnreachableTenant  `json:"unreachable"`
	}{r.Strategy, r.Complete(), float64(r.Elapsed.Microseconds()) / 1000, rows, unreachable})
}

// SortOpenSubtasks puts rows in report order: most open subtasks first,
// ties by slug in byte order (COLLATE "C" in SQL), so the order is the
// same in every strategy whatever ids or collation a deployment has.
func SortOpenSubtasks(rows []TenantOpenSubtasks) {
	slices.SortFunc(rows, CompareOpenSubtasks)
}

// CompareOpenSubtasks orders two rows as SortOpenSubtasks does.
func CompareOpenSubtasks(a, b TenantOpenSubtasks) int {
	if a.OpenSubtasks != b.OpenSubtasks {
		if a.OpenSubtasks > b.OpenSubtasks {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Slug, b.Slug)
}

// SortUnreachable orders unreachable tenants by slug.
func SortUnreachable(u []UnreachableTenant) {
	slices.SortFunc(u, func(a, b UnreachableTenant) int { return strings.Compare(a.Slug, b.Slug) })
}
