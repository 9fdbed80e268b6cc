package handlers

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"tenancy/internal/metrics"

	"tenancy/models"
	"tenancy/strategy"
)

// fakeSecretKey is the SECRET_KEY of the routers over the fake strategy.
const fakeSecretKey = "handlers-fake-secret-key-0123456789"

// signedInRouter is the router over s with sign-in set up, and the
// cookies of the fake strategy's operator and of a user of tenant-1.
func signedInRouter(t testing.TB, s strategy.Strategy, o Options) (h http.Handler, operator, user *http.Cookie) {
	t.Helper()
	o.SecretKey = fakeSecretKey
	h, sess, err := newRouter(s, o)
	if err != nil {
		t.Fatal(err)
	}
	operator = mintCookie(t, func(c *gin.Context) error {
		return sess.issueOperator(c, models.Operator{ID: 1, Email: fakeOperatorEmail})
	})
	user = mintCookie(t, func(c *gin.Context) error {
		return sess.issue(c, models.Account{ID: 2, Slug: "tenant-1"}, models.User{ID: 1, Email: fakeOperatorEmail})
	})
	return h, operator, user
}

// mintCookie is the session cookie issue sets.
func mintCookie(t testing.TB, issue func(c *gin.Context) error) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodPost, "/login", nil)
	if err := issue(c); err != nil {
		t.Fatal(err)
	}
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == sessionCookie {
			return ck
		}
	}
	t.Fatal("no session cookie issued")
	return nil
}

// TestBaseDomainNeedsAnOperator: every page of the base domain (the
// all-tenants view, the report, the metrics) answers an operator's
// session only: anonymous HTML is sent to sign in (with the way back),
// anonymous JSON gets 401, and a tenant user's cookie copied onto the
// base domain is no operator's. An operator's cookie copied onto a
// tenant's address is not a user's there. A deleted operator's cookie is
// refused.
func TestBaseDomainNeedsAnOperator(t *testing.T) {
	s := &fakeStrategy{name: strategy.SingleSchema, tenants: 3, rows: 25}
	top, err := metrics.NewTopTenants(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(s, top)
	if err != nil {
		t.Fatal(err)
	}
	h, operator, user := signedInRouter(t, s, Options{BaseDomain: "localhost", Metrics: m})
	_, sess, _ := newRouter(s, Options{BaseDomain: "localhost", SecretKey: fakeSecretKey})
	ghost := mintCookie(t, func(c *gin.Context) error {
		return sess.issueOperator(c, models.Operator{ID: 2, Email: "deleted@example.com"})
	})
	for _, tc := range []struct {
		name     string
		h        http.Handler
		host     string
		path     string
		json     bool
		cookie   *http.Cookie
		want     int
		location string
	}{
		{"operator, all tenants", h, "localhost", "/subtasks/", true, operator, 200, ""},
		{"operator, page 2", h, "localhost:8080", "/subtasks/2/", false, operator, 200, ""},
		{"operator, report", h, "localhost", "/reports/open-subtasks", true, operator, 200, ""},
		{"anonymous, HTML", h, "localhost", "/subtasks/2/?x=1", false, nil, 303, "/login?next=" + url.QueryEscape("/subtasks/2/?x=1")},
		{"anonymous, JSON", h, "localhost", "/subtasks/", true, nil, 401, ""},
		{"anonymous, report", h, "localhost", "/reports/open-subtasks", true, nil, 401, ""},
		{"tenant user's cookie on the base domain", h, "localhost", "/subtasks/", true, user, 401, ""},
		{"tenant user's cookie on the base domain, report", h, "localhost", "/reports/open-subtasks", false, user, 303, "/login?next=%2Freports%2Fopen-subtasks"},
		{"deleted operator", h, "localhost", "/subtasks/", true, ghost, 401, ""},
		{"sign-in page stays open", h, "localhost", "/login", true, nil, 200, ""},
		{"operator, metrics", h, "localhost", "/metrics", false, operator, 200, ""},
		{"operator, busiest tenants", h, "localhost", "/metrics/tenants", true, operator, 200, ""},
		{"anonymous, metrics", h, "localhost", "/metrics", true, nil, 401, ""},
		{"tenant user's cookie, busiest tenants", h, "localhost", "/metrics/tenants", true, user, 401, ""},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.Host = tc.host
		if tc.json {
			req.Header.Set("Accept", "application/json")
		}
		if tc.cookie != nil {
			req.AddCookie(tc.cookie)
		}
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, req)
		if rec.Code != tc.want || (tc.location != "" && rec.Header().Get("Location") != tc.location) {
			t.Errorf("%s: GET %s%s = %d, Location %q; want %d %q\n%s", tc.name, tc.host, tc.path, rec.Code, rec.Header().Get("Location"), tc.want, tc.location, rec.Body)
		}
		if tc.want != 200 && strings.Contains(rec.Body.String(), "subtask 1") {
			t.Errorf("%s: refused, but the body shows rows:\n%s", tc.name, rec.Body)
		}
	}

	// An operator's cookie by hand on tenant-1's address: not signed in
	// there, whereas tenant-1's user is.
	for _, tc := range []struct {
		name   string
		cookie *http.Cookie
		want   string
	}{{"operator", operator, `"signed_in":false`}, {"tenant-1's user", user, `"signed_in":true`}} {
		req := httptest.NewRequest(http.MethodGet, "/login", nil)
		req.Host = "tenant-1.localhost"
		req.Header.Set("Accept", "application/json")
		req.AddCookie(tc.cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s's cookie on tenant-1.localhost/login = %d %s, want %s", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
}
