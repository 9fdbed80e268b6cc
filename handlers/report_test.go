package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tenancy/strategy"
)

// reportingStrategy is fakeStrategy with the report's answer chosen by the
// test: rep and err, or fakeStrategy's own when both are zero.
type reportingStrategy struct {
	*fakeStrategy
	rep strategy.OpenSubtasksReport
	err error
}

func (r *reportingStrategy) ReportOpenSubtasks(ctx context.Context, o strategy.ReportOptions) (strategy.OpenSubtasksReport, error) {
	if r.err == nil && r.rep.Strategy == "" {
		return r.fakeStrategy.ReportOpenSubtasks(ctx, o)
	}
	return r.rep, r.err
}

// TestOpenSubtasksReportPage: the report is served on the base domain
// only (to an operator: see TestBaseDomainNeedsAnOperator), as HTML or JSON by the Accept header, in the strategy's order;
// elsewhere, or with the all-tenants view off, it is a 404; a partial
// report lists the tenants it could not read with their reasons but never
// an error's text, and a failed one is the usual error page.
func TestOpenSubtasksReportPage(t *testing.T) {
	const dbText = "SQLSTATE 3D000 database \"secret_tenant-1\" does not exist"
	partial := strategy.OpenSubtasksReport{
		Strategy:    strategy.MultiDB,
		Rows:        []strategy.TenantOpenSubtasks{{Slug: "tenant-0", Name: "Zero & Co", OpenSubtasks: 2, ProjectsWithOpenSubtasks: 1}},
		Unreachable: []strategy.UnreachableTenant{{Slug: "tenant-1", Reason: "its database is missing (run `tenancy setup`)", Err: errors.New(dbText)}},
	}
	tests := []struct {
		name         string
		host, accept string
		method       string
		hide         bool
		rep          strategy.OpenSubtasksReport
		err          error
		wantStatus   int
		wantType     string
		want, refuse []string // in the body, and not
	}{
		{name: "JSON on the base domain", host: "localhost:8080", accept: "application/json", wantStatus: 200, wantType: "application/json",
			want: []string{`"strategy":"singleschema"`, `"complete":true`, `"unreachable":[]`,
				`"tenants":[{"slug":"tenant-2","name":"Account tenant-2","open_subtasks":2,"projects_with_open_subtasks":1},{"slug":"tenant-1"`}},
		{name: "HTML on the base domain", host: "localhost", wantStatus: 200, wantType: "text/html",
			want:   []string{"<th>Open subtasks</th>", "<th>Projects with open subtasks</th>", "<td>tenant-2</td><td>Account tenant-2</td><td class=\"num\">2</td>", "3 tenants"},
			refuse: []string{"Not read"}},
		{name: "HEAD", host: "localhost", method: http.MethodHead, wantStatus: 200, wantType: "text/html"},
		{name: "a tenant's address, JSON", host: "tenant-1.localhost", accept: "application/json", wantStatus: 404, want: []string{"base domain"}, refuse: []string{"open_subtasks"}},
		{name: "a tenant's address, HTML", host: "tenant-1.localhost:8080", wantStatus: 404, want: []string{"base domain"}, refuse: []string{"Open subtasks"}},
		{name: "an unknown tenant's address", host: "tenant-9.localhost", wantStatus: 404},
		{name: "another site", host: "evil.com", wantStatus: 400},
		{name: "all-tenants view off, JSON", host: "localhost", accept: "application/json", hide: true, wantStatus: 404, want: []string{"ALL_TENANTS_VIEW"}, refuse: []string{"open_subtasks"}},
		{name: "all-tenants view off, HTML", host: "localhost", hide: true, wantStatus: 404, want: []string{"ALL_TENANTS_VIEW"}},
		{name: "POST", host: "localhost", method: http.MethodPost, wantStatus: 405},
		{name: "partial, JSON", host: "localhost", accept: "application/json", rep: partial, wantStatus: 200,
			want:   []string{`"complete":false`, `"unreachable":[{"slug":"tenant-1","reason":"its database is missing (run ` + "`tenancy setup`" + `)"}]`, `"name":"Zero \u0026 Co"`},
			refuse: []string{"SQLSTATE", "secret"}},
		{name: "partial, HTML", host: "localhost", rep: partial, wantStatus: 200,
			want:   []string{"Not read", "<li>tenant-1: its database is missing (run `tenancy setup`)</li>", "Zero &amp; Co"},
			refuse: []string{"SQLSTATE", "secret"}},
		{name: "database unreachable", host: "localhost", accept: "application/json", err: fmt.Errorf("open subtasks report: %w: %s", strategy.ErrUnavailable, dbText),
			wantStatus: 503, want: []string{"not reachable right now"}, refuse: []string{"SQLSTATE", "secret"}},
		{name: "a bug", host: "localhost", err: fmt.Errorf("open subtasks report: %s", dbText),
			wantStatus: 500, want: []string{"Something went wrong"}, refuse: []string{"SQLSTATE", "secret"}},
	}
	for _, tt := range tests {
		s := &reportingStrategy{fakeStrategy: &fakeStrategy{name: strategy.SingleSchema, tenants: 3, rows: 25}, rep: tt.rep, err: tt.err}
		h, err := New(s, Options{BaseDomain: "localhost", HideAllTenants: tt.hide, AllowAnonymous: true})
		if err != nil {
			t.Fatal(err)
		}
		method := tt.method
		if method == "" {
			method = http.MethodGet
		}
		req := httptest.NewRequest(method, "/reports/open-subtasks", nil)
		req.Host = tt.host
		if tt.accept != "" {
			req.Header.Set("Accept", tt.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != tt.wantStatus {
			t.Errorf("%s: %s %s/reports/open-subtasks = %d, want %d\n%s", tt.name, method, tt.host, rec.Code, tt.wantStatus, body)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); tt.wantType != "" && !strings.HasPrefix(ct, tt.wantType) {
			t.Errorf("%s: Content-Type %q, want %s", tt.name, ct, tt.wantType)
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Errorf("%s: invalid JSON: %s", tt.name, body)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: body lacks %q:\n%s", tt.name, w, body)
			}
		}
		for _, r := range tt.refuse {
			if strings.Contains(body, r) {
				t.Errorf("%s: body shows %q:\n%s", tt.name, r, body)
			}
		}
	}
}
