package loadcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// signedInStandIn serves the stand-in's pages (3 pages of 10 rows of the
// tenant's own) only to a request carrying the tenant's session, as the
// server's requireUser does for JSON: 401 otherwise. POST /login with one
// of users' emails and the password sets that session; limited, when
// set, answers refuseWith (429, or 503 as when no password check is free)
// with Retry-After to that many sign-ins first.
func signedInStandIn(t *testing.T, users map[string]string, password string, limited int64, refuseWith int) *httptest.Server {
	t.Helper()
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, _, _ := strings.Cut(r.Host, ".")
		if r.URL.Path == "/login" && r.Method == http.MethodPost {
			if refused.Add(1) <= limited {
				w.Header().Set("Retry-After", "1")
				http.Error(w, `{"error":"slow down"}`, refuseWith)
				return
			}
			var in struct{ Email, Password string }
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Email != users[tenant] || in.Password != password {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"That email and password do not match.","status":401}`)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "tenancy_session", Value: "session-of-" + tenant, HttpOnly: true})
			fmt.Fprintf(w, `{"tenant":%q,"signed_in":true}`, tenant)
			return
		}
		if c, err := r.Cookie("tenancy_session"); err != nil || c.Value != "session-of-"+tenant {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"Sign in first.","status":401}`)
			return
		}
		n := 1
		fmt.Sscanf(r.URL.Path, "/subtasks/%d/", &n)
		p := page{Page: n, Pages: 3, Total: 30}
		for i := range 10 {
			p.Rows = append(p.Rows, row{ID: int64(n*100 + i), Name: fmt.Sprintf("s%d", i), Account: tenant})
		}
		_ = json.NewEncoder(w).Encode(p)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunSendsEachTenantItsSession(t *testing.T) {
	users := map[string]string{"tenant-0": "a@zero.example", "tenant-1": "b@one.example"}
	srv := signedInStandIn(t, users, "pw", 0, 0)
	tenants := []string{"tenant-0", "tenant-1"}
	sessions, err := SignIn(context.Background(), SignInOptions{URL: srv.URL, BaseDomain: "localhost", Users: users, Password: "pw"})
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	swapped := map[string]string{"tenant-0": sessions["tenant-1"], "tenant-1": sessions["tenant-0"]}
	tests := []struct {
		name     string
		sessions map[string]string
		wantOK   bool
		wantMsg  string // of every failure
	}{
		{"each tenant its own session", sessions, true, ""},
		{"no sessions", nil, false, "no session for it"},
		{"each tenant the other's session", swapped, false, "refused this tenant's session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), Options{
				URL: srv.URL, BaseDomain: "localhost", Tenants: tenants, Requests: 200, Concurrency: 4, Sessions: tt.sessions,
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantOK {
				if res.OK != 200 || res.Failed != 0 {
					t.Errorf("OK %d, Failed %d (%v), want all 200 OK", res.OK, res.Failed, res.Answers)
				}
				return
			}
			if res.Failed != 200 {
				t.Errorf("Failed = %d, want all 200", res.Failed)
			}
			for a, n := range res.Answers {
				if a.Status != http.StatusUnauthorized || !strings.Contains(a.Message, tt.wantMsg) {
					t.Errorf("%d answers %d %q, want 401 saying %q", n, a.Status, a.Message, tt.wantMsg)
				}
			}
		})
	}
}

func TestSignIn(t *testing.T) {
	users := map[string]string{"tenant-0": "a@zero.example", "tenant-1": "b@one.example", "tenant-2": "c@two.example"}
	tests := []struct {
		name       string
		users      map[string]string
		password   string
		limited    int64
		refuseWith int
		wantErr    string
	}{
		{"every user", users, "pw", 0, 0, ""},
		{"after a 429, waits as told", map[string]string{"tenant-1": users["tenant-1"]}, "pw", 1, http.StatusTooManyRequests, ""},
		{"after a 503 with Retry-After, waits as told", map[string]string{"tenant-1": users["tenant-1"]}, "pw", 1, http.StatusServiceUnavailable, ""},
		{"wrong password", users, "nope", 0, 0, "401 Unauthorized: That email and password do not match."},
		{"another tenant's user", map[string]string{"tenant-0": users["tenant-1"]}, "pw", 0, 0, "sign in as b@one.example on tenant-0: 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := signedInStandIn(t, users, "pw", tt.limited, tt.refuseWith)
			got, err := SignIn(context.Background(), SignInOptions{URL: srv.URL, BaseDomain: "localhost", Users: tt.users, Password: tt.password, Concurrency: 2})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("SignIn = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SignIn: %v", err)
			}
			for slug := range tt.users {
				if want := "tenancy_session=session-of-" + slug; got[slug] != want {
					t.Errorf("cookie of %s = %q, want %q", slug, got[slug], want)
				}
			}
		})
	}
	if _, err := SignIn(context.Background(), SignInOptions{URL: "http://192.0.2.1", BaseDomain: "localhost", Users: users}); err == nil {
		t.Error("SignIn at 192.0.2.1: no error, want a refusal of a non-loopback address")
	}
}

func TestFailureMessage(t *testing.T) {
	tests := []struct {
		status     int
		location   string
		body       string
		hadSession bool
		want       string
	}{
		{http.StatusUnauthorized, "", `{"error":"Sign in."}`, false, "no session for it"},
		{http.StatusUnauthorized, "", "", true, "refused this tenant's session"},
		{http.StatusSeeOther, "/login?next=%2Fsubtasks%2F", "", false, "no session for it"},
		{http.StatusSeeOther, "/elsewhere", "", false, "(no JSON error message)"},
		{http.StatusNotFound, "", `{"error":"There is no such tenant here."}`, true, "There is no such tenant here."},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
		if tt.location != "" {
			resp.Header.Set("Location", tt.location)
		}
		if got := failureMessage(resp, []byte(tt.body), tt.hadSession); !strings.Contains(got, tt.want) {
			t.Errorf("failureMessage(%d, Location %q, %q, session %v) = %q, want it to contain %q", tt.status, tt.location, tt.body, tt.hadSession, got, tt.want)
		}
	}
}
