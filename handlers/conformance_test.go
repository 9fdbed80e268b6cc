package handlers_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"tenancy/configs"
	"tenancy/handlers"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
	"tenancy/strategy/strategytest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

const accounts = 3

func seedOptions() seed.Options {
	o := seed.DefaultOptions()
	o.Accounts = accounts
	o.MaxProjects, o.MaxTasks, o.MaxSubtasks = 8, 4, 4
	// At least 4*2*3 = 24 subtasks: every tenant has a third page.
	o.MinProjects, o.MinTasks, o.MinSubtasks = 4, 2, 3
	// Every test signs users in, several times over, under -race: the
	// sample users' hash at 1,000 iterations instead of 600,000 keeps each
	// sign-in cheap (an unknown email still costs the full dummy hash;
	// internal/password tests the cost itself).
	o.PasswordIterations = 1000
	return o
}

// app is a seeded deployment of one strategy behind the web handlers.
type app struct {
	name string
	s    strategy.Strategy
	h    http.Handler
	base string // BASE_DOMAIN
	// sessions holds a signed-in session per tenant host, made on first
	// use by get; nil: get sends no cookie.
	sessions *sessionJar
	// operator is the session of the deployment's operator, which get and
	// request send to the base domain.
	operator *http.Cookie
}

// Every test app's operator.
const (
	testOperator         = "ops@example.com"
	testOperatorPassword = "operator-test-password"
)

// cheapHash is pw's pbkdf2_sha256 hash at 1,000 iterations, not
// password.Hash's 600,000: every test app signs its operator in, which
// would otherwise cost seconds under the race detector.
func cheapHash(t testing.TB, pw string) string {
	t.Helper()
	key, err := pbkdf2.Key(sha256.New, pw, []byte("test-salt"), 1000, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	return "pbkdf2_sha256$1000$test-salt$" + base64.StdEncoding.EncodeToString(key)
}

// onBase adds the operator's session to a request for the base domain.
func (a app) onBase(req *http.Request) {
	if host := strings.TrimSuffix(strings.ToLower(req.Host), "."); a.operator != nil && (host == "localhost" || strings.HasPrefix(host, "localhost:")) {
		req.AddCookie(a.operator)
	}
}

// sessionJar keeps one session cookie per tenant host. Signing in costs a
// password derivation, so each host signs in once per app.
type sessionJar struct {
	mu      sync.Mutex
	cookies map[string]*http.Cookie
}

// cookieFor signs a seeded active user of the tenant host names in, once,
// and returns the cookie; nil for hosts that are no seeded tenant's.
func (a app) cookieFor(host string) *http.Cookie {
	if a.sessions == nil {
		return nil
	}
	label, _, _ := strings.Cut(host, ".")
	var i int
	if n, err := fmt.Sscanf(label, "tenant-%d", &i); n != 1 || err != nil || label != strategy.Slug(i) || i >= accounts {
		return nil
	}
	a.sessions.mu.Lock()
	defer a.sessions.mu.Unlock()
	if ck, ok := a.sessions.cookies[host]; ok {
		return ck
	}
	var user models.User
	for _, u := range seed.Generate(seedOptions(), i, "").Users {
		if u.IsActive {
			user = u
			break
		}
	}
	ck := sessionCookieOf(a.signIn(host, user.Email, seed.SamplePassword, "", true))
	a.sessions.cookies[host] = ck
	return ck
}

// deploySeeded sets up a deployment of strategy name of the test's own,
// seeds it with o, and runs then, if any, with its admin.
func deploySeeded(t testing.TB, name string, o seed.Options, then func(strategy.Admin)) configs.Config {
	t.Helper()
	cfg, err := configs.Load(pgtest.Getenv(pgtest.Env(t, name, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := strategies.OpenAdmin(cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatal(err)
	}
	seeder, err := seed.NewSeeder(admin, cfg.Strategy.TenantCount, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seeder.Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	if then != nil {
		then(admin)
	}
	return cfg
}

// testSecretKey is the SECRET_KEY of every test app.
const testSecretKey = "handlers-test-secret-key-0123456789"

func newApp(t testing.TB, name string) app {
	t.Helper()
	ctx := context.Background()
	cfg := deploySeeded(t, name, seedOptions(), func(admin strategy.Admin) {
		if _, err := admin.CreateOperator(ctx, testOperator, cheapHash(t, testOperatorPassword)); err != nil {
			t.Fatal(err)
		}
	})
	s, err := strategies.Open(ctx, cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h, err := handlers.New(s, handlers.Options{BaseDomain: cfg.BaseDomain, SecretKey: testSecretKey})
	if err != nil {
		t.Fatal(err)
	}
	a := app{name: name, s: s, h: h, base: cfg.BaseDomain, sessions: &sessionJar{cookies: map[string]*http.Cookie{}}}
	rec := a.signIn(cfg.BaseDomain, testOperator, testOperatorPassword, "", true)
	if a.operator = sessionCookieOf(rec); rec.Code != http.StatusOK || a.operator == nil {
		t.Fatalf("%s: operator sign-in on %s = %d %s, want 200 and a cookie", name, cfg.BaseDomain, rec.Code, rec.Body)
	}
	return a
}

// get asks for path on host, signed in as a user of host's tenant when
// it is a seeded tenant's address (see anonymous for the other way).
func (a app) get(host, path string, json bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "http://placeholder"+path, nil)
	req.Host = host
	a.onBase(req)
	if json {
		req.Header.Set("Accept", "application/json")
	}
	if ck := a.cookieFor(host); ck != nil {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

type row struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	IsComplete bool   `json:"is_complete"`
	Details    string `json:"details"`
	Account    string `json:"account"`
	Project    string `json:"project"`
	Task       string `json:"task"`
}

type page struct {
	Page  int   `json:"page"`
	Pages int   `json:"pages"`
	Total int   `json:"total"`
	Rows  []row `json:"rows"`
}

func (a app) page(t *testing.T, host string, n int) page {
	t.Helper()
	rec := a.get(host, fmt.Sprintf("/subtasks/%d/", n), true)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s GET %s /subtasks/%d/ = %d %s", a.name, host, n, rec.Code, rec.Body)
	}
	var p page
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("%s: decode page: %v\n%s", a.name, err, rec.Body)
	}
	return p
}

// allPages walks every page of host's list.
func (a app) allPages(t *testing.T, host string) []page {
	t.Helper()
	first := a.page(t, host, 1)
	out := []page{first}
	for n := 2; n <= first.Pages; n++ {
		out = append(out, a.page(t, host, n))
	}
	return out
}

// TestStrategiesServeTheSamePages runs one behavioural suite against every
// strategy and then compares what they served: the same pages for each
// tenant and for all tenants, and the same cross-tenant report.
func TestStrategiesServeTheSamePages(t *testing.T) {
	t.Parallel()
	served := map[string]map[string][]page{}
	reports := map[string]openSubtasksReport{}
	for _, name := range strategy.Names() {
		a := newApp(t, name)
		served[name] = map[string][]page{}
		t.Run(name, func(t *testing.T) {
			for i := range accounts {
				slug := strategy.Slug(i)
				pages := a.allPages(t, slug+".localhost:8080")
				served[name][slug] = pages
				checkTenantPages(t, name, slug, pages, seed.Generate(seedOptions(), i, ""))
			}
			checkHTML(t, a)
			checkBadRequests(t, a)
			checkBaseDomain(t, a)
			reports[name] = checkOpenSubtasksReport(t, a)
			if name != strategy.MultiDB {
				served[name][allTenants] = a.allPages(t, "localhost:8080")
			}
		})
	}

	// Same seed, same pages: everything but the ids, which each multidb
	// database and each multischema schema numbers from 1.
	for _, name := range strategy.Names() {
		if name == strategy.SingleSchema {
			continue
		}
		slugs := []string{}
		for i := range accounts {
			slugs = append(slugs, strategy.Slug(i))
		}
		if name != strategy.MultiDB {
			slugs = append(slugs, allTenants)
		}
		for _, slug := range slugs {
			m, s := withoutIDs(served[name][slug]), withoutIDs(served[strategy.SingleSchema][slug])
			if !reflect.DeepEqual(m, s) {
				t.Errorf("%s: %s and singleschema served different pages:\n%+v\n---\n%+v", slug, name, m, s)
			}
		}
	}

	// Same seed, same report: the same tenants, counts and order, in every
	// strategy (each was also checked against the seed above).
	for _, name := range strategy.Names() {
		if !reflect.DeepEqual(reports[name].Rows, reports[strategy.SingleSchema].Rows) {
			t.Errorf("%s and singleschema reported different open subtasks:\n%+v\n---\n%+v", name, reports[name].Rows, reports[strategy.SingleSchema].Rows)
		}
	}
}

// openSubtasksReport is the report page's JSON.
type openSubtasksReport struct {
	Strategy    string                        `json:"strategy"`
	Complete    bool                          `json:"complete"`
	Rows        []strategy.TenantOpenSubtasks `json:"tenants"`
	Unreachable []struct{ Slug, Reason string }
}

// checkOpenSubtasksReport reads the report at the base domain as JSON and
// HTML, checks it against the seed, and checks it is nowhere else.
func checkOpenSubtasksReport(t *testing.T, a app) openSubtasksReport {
	t.Helper()
	const path = "/reports/open-subtasks"
	rec := a.get("localhost:8080", path, true)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s GET localhost %s = %d %s", a.name, path, rec.Code, rec.Body)
	}
	var rep openSubtasksReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("%s: decode the report: %v\n%s", a.name, err, rec.Body)
	}
	var seeded []*strategy.TenantData
	for i := range accounts {
		acct := seed.Generate(seedOptions(), i, "")
		seeded = append(seeded, &acct)
	}
	want := strategytest.ExpectedReport(seeded...)
	if rep.Strategy != a.name || !rep.Complete || len(rep.Unreachable) != 0 || !reflect.DeepEqual(rep.Rows, want) {
		t.Errorf("%s report: strategy %q, complete %v, unreachable %+v, rows\n%swant %s, complete, rows\n%s",
			a.name, rep.Strategy, rep.Complete, rep.Unreachable, strategytest.FormatReport(rep.Rows), a.name, strategytest.FormatReport(want))
	}

	rec = a.get("localhost:8080", path, false)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%s report as HTML: %d %s", a.name, rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, r := range want {
		row := fmt.Sprintf(`<td>%s</td><td>%s</td><td class="num">%d</td><td class="num">%d</td>`,
			r.Slug, template.HTMLEscapeString(r.Name), r.OpenSubtasks, r.ProjectsWithOpenSubtasks)
		if !strings.Contains(body, row) {
			t.Errorf("%s report as HTML lacks the row %s", a.name, row)
		}
	}

	hidden, err := handlers.New(a.s, handlers.Options{BaseDomain: "localhost", HideAllTenants: true, AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		what string
		h    http.Handler
		host string
		want string
	}{
		{"on a tenant's address", a.h, "tenant-1.localhost:8080", "base domain"},
		{"with the all-tenants view off", hidden, "localhost:8080", "ALL_TENANTS_VIEW"},
	} {
		for _, asJSON := range []bool{true, false} {
			rec := (app{name: a.name, h: tt.h, sessions: a.sessions, operator: a.operator}).get(tt.host, path, asJSON)
			if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), tt.want) || strings.Contains(rec.Body.String(), "open_subtasks") {
				t.Errorf("%s report %s (JSON %v) = %d %s, want 404 saying %q", a.name, tt.what, asJSON, rec.Code, rec.Body, tt.want)
			}
		}
	}
	return rep
}

// allTenants keys the all-tenants view's pages among the tenants'.
const allTenants = "(all tenants)"

func withoutIDs(pages []page) []page {
	out := make([]page, len(pages))
	for i, p := range pages {
		out[i] = p
		out[i].Rows = make([]row, len(p.Rows))
		for j, r := range p.Rows {
			r.ID = 0
			out[i].Rows[j] = r
		}
	}
	return out
}

// checkTenantPages: every row is the tenant's, every one of its subtasks
// appears once, ten to a page, in name then id order.
func checkTenantPages(t *testing.T, name, slug string, pages []page, generated seed.Account) {
	t.Helper()
	want := map[string]int{}
	for _, s := range generated.Subtasks {
		want[s.Name]++
	}
	got := map[string]int{}
	seen := map[int64]bool{}
	var order []row
	for _, p := range pages {
		if p.Total != len(generated.Subtasks) || p.Pages != (p.Total+9)/10 {
			t.Errorf("%s %s page %d: total %d of %d pages, want %d subtasks", name, slug, p.Page, p.Total, p.Pages, len(generated.Subtasks))
		}
		if p.Page < p.Pages && len(p.Rows) != 10 {
			t.Errorf("%s %s page %d has %d rows, want 10", name, slug, p.Page, len(p.Rows))
		}
		for _, r := range p.Rows {
			if r.Account != slug {
				t.Errorf("%s: tenant %s was served a row of %s: %+v", name, slug, r.Account, r)
			}
			if seen[r.ID] {
				t.Errorf("%s %s: subtask %d served twice", name, slug, r.ID)
			}
			seen[r.ID] = true
			got[r.Name]++
			order = append(order, r)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %s: served subtask names differ from the generated ones", name, slug)
	}
	if !sort.SliceIsSorted(order, func(i, j int) bool {
		return order[i].Name < order[j].Name || order[i].Name == order[j].Name && order[i].ID < order[j].ID
	}) {
		t.Errorf("%s %s: rows are not ordered by name, then id", name, slug)
	}
}

func checkHTML(t *testing.T, a app) {
	t.Helper()
	rec := a.get("tenant-1.localhost:8080", "/subtasks/2/", false)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%s HTML page: %d %s", a.name, rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"<th>Account</th>", "<th>Project</th>", "<th>Task</th>", "<th>Subtask</th>", "<th>Name</th>", "<th>Complete?</th>", "<th>Details</th>", "tenant-1 · ", `href="/subtasks/1/"`, `<a href="/subtasks/1/" rel="prev">`, `<a href="/subtasks/3/" rel="next">`, "Page 2 of"} {
		if !strings.Contains(body, want) {
			t.Errorf("%s HTML page 2 lacks %q", a.name, want)
		}
	}
	if rec := a.get("tenant-1.localhost:8080", "/", false); rec.Code != http.StatusFound || rec.Header().Get("Location") != "/subtasks/" {
		t.Errorf("%s GET / = %d to %q, want 302 to /subtasks/", a.name, rec.Code, rec.Header().Get("Location"))
	}
	if rec := a.get("127.0.0.1:8080", "/healthz", true); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"ok"`) {
		t.Errorf("%s GET /healthz = %d %s", a.name, rec.Code, rec.Body)
	}
}

func checkBadRequests(t *testing.T, a app) {
	t.Helper()
	tests := []struct {
		host, path string
		want       int
	}{
		{"tenant-1.localhost.evil.com", "/subtasks/", 400},
		{"evil.com", "/subtasks/", 400},
		{"", "/subtasks/", 400},
		{"127.0.0.1:8080", "/subtasks/", 400},
		{"tenant-1'; drop table x;--.localhost", "/subtasks/", 400},
		{"tenаnt-1.localhost", "/subtasks/", 400},
		{strings.Repeat("t", 300) + ".localhost", "/subtasks/", 400},
		{"tenant-01.localhost", "/subtasks/", 404},
		{"tenant--1.localhost", "/subtasks/", 404},
		{"tenant-99.localhost", "/subtasks/", 404},
		{"tenant-1.localhost", "/subtasks/0/", 404},
		{"tenant-1.localhost", "/subtasks/-1/", 404},
		{"tenant-1.localhost", "/subtasks/1e9/", 404},
		{"tenant-1.localhost", "/subtasks/abc/", 404},
		{"tenant-1.localhost", "/subtasks/%00/", 404},
		{"tenant-1.localhost", "/subtasks/01/", 404},
		{"tenant-1.localhost", "/subtasks/999999/", 404},
		{"tenant-1.localhost", "/nowhere", 404},
	}
	for _, tt := range tests {
		for _, asJSON := range []bool{false, true} {
			rec := a.get(tt.host, tt.path, asJSON)
			if rec.Code != tt.want {
				t.Errorf("%s GET %q %s (json %v) = %d, want %d", a.name, tt.host, tt.path, asJSON, rec.Code, tt.want)
			}
			body, _ := io.ReadAll(rec.Body)
			if strings.Contains(string(body), "SQLSTATE") || strings.Contains(string(body), "ERROR:") {
				t.Errorf("%s GET %q %s shows a database error: %s", a.name, tt.host, tt.path, body)
			}
		}
	}
	for _, tt := range []struct {
		method, host, path string
		want               int
	}{
		{http.MethodPost, "tenant-1.localhost", "/subtasks/", http.StatusMethodNotAllowed},
		{http.MethodDelete, "tenant-1.localhost", "/subtasks/1/", http.StatusMethodNotAllowed},
		{http.MethodHead, "tenant-1.localhost", "/subtasks/", http.StatusOK},
		{http.MethodHead, "127.0.0.1", "/healthz", http.StatusOK},
		{http.MethodHead, "tenant-99.localhost", "/subtasks/", http.StatusNotFound},
	} {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Host = tt.host
		if ck := a.cookieFor(tt.host); ck != nil {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s %s %s %s = %d, want %d", a.name, tt.method, tt.host, tt.path, rec.Code, tt.want)
		}
	}
}

func checkBaseDomain(t *testing.T, a app) {
	t.Helper()
	hidden, err := handlers.New(a.s, handlers.Options{BaseDomain: "localhost", HideAllTenants: true, AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	if rec := (app{name: a.name, h: hidden}).get("localhost:8080", "/subtasks/", true); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "ALL_TENANTS_VIEW") {
		t.Errorf("%s base domain with the all-tenants view hidden = %d %s, want 404 naming ALL_TENANTS_VIEW", a.name, rec.Code, rec.Body)
	}
	rec := a.get("localhost:8080", "/subtasks/", true)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s base domain = %d %s", a.name, rec.Code, rec.Body)
	}
	switch a.name {
	case strategy.SingleSchema, strategy.MultiSchema:
		var p page
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		want := 0
		for i := range accounts {
			want += len(seed.Generate(seedOptions(), i, "").Subtasks)
		}
		tenants := map[string]bool{}
		for _, pg := range a.allPages(t, "localhost:8080") {
			for _, r := range pg.Rows {
				tenants[r.Account] = true
			}
		}
		if p.Total != want || len(tenants) != accounts {
			t.Errorf("all-tenants view: total %d from %d tenants, want %d from %d", p.Total, len(tenants), want, accounts)
		}
	case strategy.MultiDB:
		var body struct {
			Tenants []struct{ Slug, URL string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Tenants) != 3 || body.Tenants[1].URL != "http://tenant-1.localhost:8080/subtasks/" {
			t.Errorf("multidb tenant list = %+v, want 3 tenants linking to their subtasks", body.Tenants)
		}
		if rec := a.get("localhost:8080", "/subtasks/", false); !strings.Contains(rec.Body.String(), `href="http://tenant-2.localhost:8080/subtasks/"`) {
			t.Errorf("multidb tenant list page lacks a link to tenant-2")
		}
		if rec := a.get("localhost:8080", "/subtasks/2/", true); rec.Code != http.StatusNotFound {
			t.Errorf("multidb tenant list page 2 = %d, want 404", rec.Code)
		}
	}
}
