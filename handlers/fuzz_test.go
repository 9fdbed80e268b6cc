package handlers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
)

// fakeStrategy is an in-memory strategy.Strategy with tenants tenant-0 to
// tenant-<tenants-1>, each with rows subtasks, so the router can be driven
// by hostile input without a database. It behaves like the real ones where
// the handlers can tell: unknown or non-canonical slugs are not found, pages
// past the last are ErrPageNotFound, and multidb has no all-tenants list.
type fakeStrategy struct {
	name    string
	tenants int
	rows    int
}

// fakeCalls records what reached the strategy during one request; the test
// puts it on the request's context.
type fakeCalls struct {
	mu    sync.Mutex
	slugs []string
	pages []int
}

type fakeCallsKey struct{}

func callsOf(ctx context.Context) *fakeCalls {
	c, _ := ctx.Value(fakeCallsKey{}).(*fakeCalls)
	return c
}

func (f *fakeStrategy) Name() string { return f.name }

func (f *fakeStrategy) TenantBySlug(ctx context.Context, slug string) (models.Account, error) {
	if c := callsOf(ctx); c != nil {
		c.mu.Lock()
		c.slugs = append(c.slugs, slug)
		c.mu.Unlock()
	}
	i, ok := strategy.ParseSlug(slug)
	if !ok || i >= f.tenants {
		return models.Account{}, fmt.Errorf("%w: %q", strategy.ErrTenantNotFound, slug)
	}
	return models.Account{ID: models.TenantID(i + 1), Slug: slug, Name: "Account " + slug}, nil
}

func (f *fakeStrategy) Tenants(context.Context) ([]models.Account, error) {
	out := make([]models.Account, f.tenants)
	for i := range out {
		out[i] = models.Account{ID: models.TenantID(i + 1), Slug: strategy.Slug(i)}
	}
	return out, nil
}

func (f *fakeStrategy) Tx(context.Context, func(tx *gorm.DB) error) error {
	return errors.New("fake strategy: no database")
}

func (f *fakeStrategy) ListSubtasks(ctx context.Context, page, perPage int) (strategy.SubtaskPage, error) {
	if c := callsOf(ctx); c != nil {
		c.mu.Lock()
		c.pages = append(c.pages, page)
		c.mu.Unlock()
	}
	var slugs []string
	if t, ok := models.TenantFromContext(ctx); ok {
		slugs = []string{t.Slug}
	} else if models.IsAllTenants(ctx) {
		if f.name == strategy.MultiDB {
			return strategy.SubtaskPage{}, strategy.ErrNotSupported
		}
		for i := range f.tenants {
			slugs = append(slugs, strategy.Slug(i))
		}
	} else {
		return strategy.SubtaskPage{}, strategy.ErrNoTenant
	}
	total := len(slugs) * f.rows
	out := strategy.SubtaskPage{Page: page, Total: int64(total), Pages: max(1, (total+perPage-1)/perPage)}
	if page < 1 || page > out.Pages {
		return out, strategy.ErrPageNotFound
	}
	for n := (page - 1) * perPage; n < min(total, page*perPage); n++ {
		slug := slugs[n/f.rows]
		out.Rows = append(out.Rows, models.SubtaskRow{ID: int64(n + 1), Name: fmt.Sprintf("%s subtask %d", slug, n%f.rows), AccountSlug: slug})
	}
	return out, nil
}

// ReportOpenSubtasks gives tenant-i i open subtasks in one project, most
// first, as the real ones order them.
func (f *fakeStrategy) ReportOpenSubtasks(ctx context.Context, _ strategy.ReportOptions) (strategy.OpenSubtasksReport, error) {
	if !models.IsAllTenants(ctx) {
		return strategy.OpenSubtasksReport{}, strategy.ErrNotAllTenants
	}
	out := strategy.OpenSubtasksReport{Strategy: f.name}
	for i := f.tenants - 1; i >= 0; i-- {
		out.Rows = append(out.Rows, strategy.TenantOpenSubtasks{Slug: strategy.Slug(i), Name: "Account " + strategy.Slug(i),
			OpenSubtasks: int64(i), ProjectsWithOpenSubtasks: int64(min(i, 1))})
	}
	return out, nil
}

func (f *fakeStrategy) UserByEmail(context.Context, string) (models.User, error) {
	return models.User{}, strategy.ErrUserNotFound
}

// fakeOperatorEmail is the fake strategy's one operator, operator 1.
const fakeOperatorEmail = "ops@example.com"

func (f *fakeStrategy) OperatorByEmail(_ context.Context, email string) (models.Operator, error) {
	if email != fakeOperatorEmail {
		return models.Operator{}, strategy.ErrOperatorNotFound
	}
	return models.Operator{ID: 1, Email: fakeOperatorEmail}, nil
}

func (f *fakeStrategy) RevokeSession(context.Context, string, time.Time) error { return nil }

func (f *fakeStrategy) RevokedSessions(context.Context, time.Time) ([]strategy.RevokedSession, error) {
	return nil, nil
}

// The fake has nothing to write: every row is not found, as another
// tenant's would be.
func (f *fakeStrategy) GetSubtask(context.Context, int64) (strategy.Subtask, error) {
	return strategy.Subtask{}, strategy.ErrNotFound
}

func (f *fakeStrategy) CreateSubtask(_ context.Context, in strategy.NewSubtask) (strategy.Subtask, error) {
	if err := strategy.CheckNewSubtask(in); err != nil {
		return strategy.Subtask{}, err
	}
	return strategy.Subtask{}, &strategy.ValidationError{Fields: map[string]string{"task_id": "there is no task with this id in this account"}}
}

func (f *fakeStrategy) UpdateSubtask(_ context.Context, _ int64, version string, c strategy.SubtaskChange) (strategy.Subtask, error) {
	if err := strategy.CheckSubtaskChange(version, c); err != nil {
		return strategy.Subtask{}, err
	}
	return strategy.Subtask{}, strategy.ErrNotFound
}

func (f *fakeStrategy) DeleteSubtask(context.Context, int64, string) error {
	return strategy.ErrNotFound
}

func (f *fakeStrategy) CompleteTask(context.Context, int64) (strategy.Task, error) {
	return strategy.Task{}, strategy.ErrNotFound
}

func (f *fakeStrategy) ListTasks(context.Context, int) ([]strategy.Task, error) { return nil, nil }

func (f *fakeStrategy) Ping(context.Context) error { return nil }
func (f *fakeStrategy) Close() error               { return nil }

// fakeRouter is the real router over a fake strategy: 3 tenants of 25
// subtasks, 3 pages each, with every request signed in as the fake's
// operator (whom the base domain asks for, and tenants' addresses
// ignore) unless it brings a session of its own.
func fakeRouter(t testing.TB, name string) http.Handler {
	t.Helper()
	h, err := New(&fakeStrategy{name: name, tenants: 3, rows: 25}, Options{BaseDomain: "localhost", AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hostileRequest builds the request the server would hand the router for a
// raw request target, then sets Host and Accept as given, unchecked (the
// router must cope with any Host, even one net/http would refuse). ok is
// false when net/http could not parse the request line at all.
func hostileRequest(method, target, host, accept string) (*http.Request, *fakeCalls, bool) {
	if strings.ContainsAny(target, " \r\n") || target == "" {
		return nil, nil, false
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
	if err != nil {
		return nil, nil, false
	}
	req.Host = host
	if accept != "" {
		req.Header["Accept"] = []string{accept}
	}
	calls := &fakeCalls{}
	return req.WithContext(context.WithValue(req.Context(), fakeCallsKey{}, calls)), calls, true
}

// slugShape is all a slug that reaches the strategy may look like: what
// parseHost lets through. Nothing with quotes, spaces, semicolons or
// non-ASCII characters ever gets near a query.
var slugShape = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// checkResponse asserts what must hold for any request: no 5xx (the fake
// never fails, so a 5xx can only be a panic or a misclassified input), only
// the statuses the app answers, nothing but a shaped slug and a positive
// page reaching the strategy, and a 200 list only for a canonical, known
// tenant (or the base domain) with only that tenant's rows.
func checkResponse(t *testing.T, name, method, target, host string, rec *httptest.ResponseRecorder, calls *fakeCalls) {
	t.Helper()
	switch rec.Code {
	case http.StatusOK, http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect,
		http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
	default:
		t.Fatalf("%s %s %q Host %q = %d, want no 5xx and only statuses the app answers; body:\n%s", name, method, target, host, rec.Code, rec.Body)
	}
	for _, s := range calls.slugs {
		if !slugShape.MatchString(s) {
			t.Fatalf("%s %s %q Host %q: slug %q reached the strategy", name, method, target, host, s)
		}
	}
	for _, p := range calls.pages {
		if p < 1 || p > 999999999 {
			t.Fatalf("%s %s %q Host %q: page %d reached the strategy", name, method, target, host, p)
		}
	}
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || len(calls.pages) == 0 {
		return
	}
	// A list was served: for a tenant host, its first label must be a
	// canonical slug of a tenant that exists, and every row must be its.
	kind, slug := parseHost(host, "localhost")
	if kind == hostBase {
		return
	}
	if i, ok := strategy.ParseSlug(slug); kind != hostTenant || !ok || i >= 3 || !isASCII(host) {
		t.Fatalf("%s %s %q Host %q = 200 with a list, but that host names no canonical tenant", name, method, target, host)
	}
	var page struct {
		Rows []struct {
			Account string `json:"account"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatalf("%s %s %q Host %q: decode: %v", name, method, target, host, err)
	}
	for _, r := range page.Rows {
		if r.Account != slug {
			t.Fatalf("%s %s %q Host %q: tenant %s was served a row of %s", name, method, target, host, slug, r.Account)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// TestHostileRequests runs the inputs the issue lists, and a few more,
// through the real router on the fake strategy of each kind.
func TestHostileRequests(t *testing.T) {
	tests := []struct {
		host, target string
		want         int
	}{
		{"tenant-1.localhost", "/subtasks/", 200},
		{"tenant-1.localhost:8080", "/subtasks/3/", 200},
		{"TENANT-1.localhost", "/subtasks/", 200}, // host names are case-insensitive
		{"tenant-1.localhost.", "/subtasks/", 200},
		{"tenant-1.localhost.evil.com", "/subtasks/", 400},
		{"[tenant-1.localhost]:8080", "/subtasks/", 400},
		{"evil.com", "/subtasks/", 400},
		{"tenant-01.localhost", "/subtasks/", 404},
		{"tenant--1.localhost", "/subtasks/", 404},
		{"tenant-+1.localhost", "/subtasks/", 400},
		{"tenant-1'; drop table x;--.localhost", "/subtasks/", 400},
		{"tenant-1' OR '1'='1.localhost", "/subtasks/", 400},
		{"tenant-3.localhost", "/subtasks/", 404}, // no such tenant
		{"tenant-999999999999.localhost", "/subtasks/", 404},
		{strings.Repeat("a", 63) + ".localhost", "/subtasks/", 404},
		{strings.Repeat("a", 64) + ".localhost", "/subtasks/", 400},
		{strings.Repeat("tenant-1.", 30) + "localhost", "/subtasks/", 400},
		{strings.Repeat("x", 1<<16), "/subtasks/", 400},
		{"t\u0435nant-1.localhost", "/subtasks/", 400}, // Cyrillic е
		{"tenant-\uff11.localhost", "/subtasks/", 400}, // fullwidth 1
		{"\uff54\uff45\uff4e\uff41\uff4e\uff54-1.localhost", "/subtasks/", 400},
		{"xn--tnant-1-5nf.localhost", "/subtasks/", 404}, // punycode lookalike: well-formed, unknown
		{"", "/subtasks/", 400},
		{" ", "/subtasks/", 400},
		{"tenant-1.localhost\x00", "/subtasks/", 400},
		{"tenant-1.localhost\r\nX-Tenant: tenant-2", "/subtasks/", 400},
		{"tenant-1.localhost", "/subtasks/0/", 404},
		{"tenant-1.localhost", "/subtasks/-1/", 404},
		{"tenant-1.localhost", "/subtasks/1e9/", 404},
		{"tenant-1.localhost", "/subtasks/1000000000/", 404},
		{"tenant-1.localhost", "/subtasks/999999999/", 404}, // well-formed, past the last page
		{"tenant-1.localhost", "/subtasks/4/", 404},
		{"tenant-1.localhost", "/subtasks/abc/", 404},
		{"tenant-1.localhost", "/subtasks/%00/", 404},
		{"tenant-1.localhost", "/subtasks/1%00/", 404},
		{"tenant-1.localhost", "/subtasks/%EF%BC%91/", 404}, // fullwidth 1
		{"tenant-1.localhost", "/subtasks/1'%3B%20drop%20table%20x%3B--/", 404},
		{"tenant-1.localhost", "/subtasks/01/", 404},
		{"tenant-1.localhost", "/subtasks/" + strings.Repeat("9", 5000) + "/", 404},
		{"tenant-1.localhost", "/subtasks/1/..%2F..%2F/", 404},
		{"tenant-1.localhost", "/subtasks/1", 301},   // gin adds the slash
		{"tenant-1.localhost", "/../subtasks/", 404}, // gin does not clean paths
		{"localhost", "/subtasks/2/", 200},           // all tenants: 75 rows, 8 pages
		{"localhost", "/subtasks/9/", 404},
	}
	for _, name := range strategy.Names() {
		h := fakeRouter(t, name)
		for _, tt := range tests {
			req, calls, ok := hostileRequest(http.MethodGet, tt.target, tt.host, "application/json")
			if !ok {
				t.Fatalf("request target %q does not parse", tt.target)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			want := tt.want
			if name == strategy.MultiDB && tt.host == "localhost" && tt.target != "/subtasks/" {
				want = 404 // the multidb base domain is a one-page list of tenants
			}
			if rec.Code != want {
				t.Errorf("%s GET %q Host %q = %d, want %d; body: %s", name, tt.target, tt.host, rec.Code, want, rec.Body)
			}
			checkResponse(t, name, http.MethodGet, tt.target, tt.host, rec, calls)
		}
	}
}

// FuzzParseHost: no panic; what parseHost accepts is ASCII and is exactly
// <slug>.<base> or <base> (any case, optional port and trailing dot), with
// a slug of the shape the strategy is given.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"localhost", "tenant-1.localhost:8080", "TENANT-1.localhost", "tenant-01.localhost",
		"tenant--1.localhost", "tenant-1.localhost.evil.com", "tenant-1'; drop table x;--.localhost",
		"t\u0435nant-1.localhost", "tenant-\uff11.localhost", "boo\u212Ashop.localhost", "", "[::1]:80", "[tenant-1.localhost]:80", "a.b.localhost.", "localhost:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		kind, slug := parseHost(host, "localhost")
		if kind == hostInvalid {
			if slug != "" {
				t.Fatalf("parseHost(%q) = invalid with slug %q", host, slug)
			}
			return
		}
		if !isASCII(host) {
			t.Fatalf("parseHost(%q) = %v, %q: accepted a non-ASCII host", host, kind, slug)
		}
		name := strings.ToLower(host)
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			if port := name[i+1:]; port == "" || strings.Trim(port, "0123456789") != "" {
				t.Fatalf("parseHost(%q) = %v, %q: accepted port %q", host, kind, slug, port)
			}
			name = name[:i]
		}
		name = strings.TrimSuffix(name, ".")
		switch kind {
		case hostBase:
			if name != "localhost" || slug != "" {
				t.Fatalf("parseHost(%q) = base, %q; host name %q", host, slug, name)
			}
		case hostTenant:
			if !slugShape.MatchString(slug) || name != slug+".localhost" {
				t.Fatalf("parseHost(%q) = tenant %q; host name %q", host, slug, name)
			}
		}
	})
}

// FuzzParsePage: no panic; an accepted page is a positive int that prints
// back as the input, so each page has exactly one spelling.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{"", "1", "42", "0", "-1", "01", "1e9", "abc", "\x00", "%00", "999999999", "1000000000", "\uff11", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, ok := parsePage(raw)
		switch {
		case !ok && n != 0:
			t.Fatalf("parsePage(%q) = %d, false; want 0 with false", raw, n)
		case ok && raw == "" && n != 1:
			t.Fatalf("parsePage(\"\") = %d, want 1", n)
		case ok && raw != "" && (n < 1 || n > 999999999 || strconv.Itoa(n) != raw):
			t.Fatalf("parsePage(%q) = %d, true; want a canonical page from 1 to 999999999", raw, n)
		}
	})
}

// FuzzRouter sends arbitrary Host headers, request targets, Accept headers
// and methods through the real router over the fake strategy of each kind
// and checks every response with checkResponse.
func FuzzRouter(f *testing.F) {
	for _, s := range []struct {
		method       uint8
		host, target string
		accept       string
	}{
		{0, "tenant-1.localhost", "/subtasks/2/", "application/json"},
		{0, "localhost:8080", "/subtasks/", "application/json;q=0.9, text/html;q=0.1"},
		{0, "tenant-01.localhost", "/subtasks/", ""},
		{1, "TENANT-2.LOCALHOST.", "/subtasks/1/", "*/*"},
		{0, "tenant-1'; drop table x;--.localhost", "/subtasks/1'/", "application/json"},
		{0, "tenant-1.localhost", "/subtasks/%00/", "application/json"},
		{0, "tenant-1.localhost", "/subtasks/1e9/", "application/json;q=NaN"},
		{2, "tenant-1.localhost", "/subtasks/-1/", "text/html"},
		{3, "", "/healthz", ""},
		{0, "t\u0435nant-1.localhost", "//subtasks//1//", ""},
		{4, "tenant-2.localhost", "*", ""},
		{0, "tenant-0.localhost", "http://tenant-1.localhost/subtasks/", "application/json"},
	} {
		f.Add(s.method, s.host, s.target, s.accept)
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete, http.MethodOptions}
	routers := map[string]http.Handler{}
	for _, name := range strategy.Names() {
		routers[name] = fakeRouter(f, name)
	}
	f.Fuzz(func(t *testing.T, m uint8, host, target, accept string) {
		method := methods[int(m)%len(methods)]
		for name, h := range routers {
			req, calls, ok := hostileRequest(method, target, host, accept)
			if !ok {
				return // net/http would have answered 400 itself
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			checkResponse(t, name, method, target, host, rec, calls)
		}
	})
}
