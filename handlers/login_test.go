package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"tenancy/handlers"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
)

// signIn posts email and password to host's /login as a form (JSON answer
// when asJSON), with next when not empty.
func (a app) signIn(host, email, pw, next string, asJSON bool, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	return a.serve(a.h, http.MethodPost, host, "/login", url.Values{"email": {email}, "password": {pw}, "next": {next}}, asJSON, cookies...)
}

func (a app) serve(h http.Handler, method, host, path string, form url.Values, asJSON bool, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, "http://placeholder"+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, "http://placeholder"+path, nil)
	}
	req.Host = host
	if asJSON {
		req.Header.Set("Accept", "application/json")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

type sessionState struct {
	Tenant   string `json:"tenant"`
	SignedIn bool   `json:"signed_in"`
	Email    string `json:"email"`
}

// state is what host's GET /login says of the request's session.
func (a app) state(t *testing.T, h http.Handler, host string, cookies ...*http.Cookie) sessionState {
	t.Helper()
	rec := a.serve(h, http.MethodGet, host, "/login", nil, true, cookies...)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s GET %s/login = %d %s, want 200", a.name, host, rec.Code, rec.Body)
	}
	var s sessionState
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatalf("%s GET %s/login: %v\n%s", a.name, host, err, rec.Body)
	}
	return s
}

func sessionCookieOf(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == "tenancy_session" {
			return c
		}
	}
	return nil
}

// seededUsers returns an active seeded user of tenant i, and an inactive
// one if the seed made any.
func seededUsers(t testing.TB, i int) (active models.User, inactive *models.User) {
	t.Helper()
	found := false
	for _, u := range seed.Generate(seedOptions(), i, "").Users {
		switch {
		case u.IsActive && !found:
			active, found = u, true
		case !u.IsActive && inactive == nil:
			inactive = &u
		}
	}
	if !found {
		t.Fatalf("the seed gave tenant-%d no active user", i)
	}
	return active, inactive
}

// TestSignIn: a seeded user signs in on their own tenant's address with the
// sample password, and the session is good there and nowhere else.
func TestSignIn(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, name)
			host0, host1 := "tenant-0."+a.base+":8080", "tenant-1."+a.base+":8080"
			user, inactive := seededUsers(t, 0)

			// Signed in: a cookie with the attributes that keep it on this
			// host, away from scripts and from other sites' posts.
			rec := a.signIn(host0, user.Email, seed.SamplePassword, "", false)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
				t.Fatalf("POST %s/login as %s = %d, Location %q; want 303 to /\n%s", host0, user.Email, rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			ck := sessionCookieOf(rec)
			if ck == nil {
				t.Fatalf("POST %s/login set no session cookie: %q", host0, rec.Header().Values("Set-Cookie"))
			}
			if ck.Domain != "" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure || ck.Path != "/" || ck.MaxAge <= 0 {
				t.Errorf("session cookie %q: want host-only, HttpOnly, SameSite=Lax, not Secure over plain HTTP, Path=/, a positive Max-Age", rec.Header().Get("Set-Cookie"))
			}
			if strings.Contains(ck.Value, user.Email) || strings.Contains(ck.Value, "tenant-0") {
				t.Errorf("session cookie %q shows its content; want it encrypted", ck.Value)
			}
			if got := a.state(t, a.h, host0, ck); !got.SignedIn || got.Email != user.Email || got.Tenant != "tenant-0" {
				t.Errorf("GET %s/login with the cookie = %+v, want signed in as %s", host0, got, user.Email)
			}

			// A JSON client signs in with a JSON object.
			body, _ := json.Marshal(map[string]string{"email": user.Email, "password": seed.SamplePassword})
			req := httptest.NewRequest(http.MethodPost, "http://placeholder/login", strings.NewReader(string(body)))
			req.Host, req.Header["Content-Type"], req.Header["Accept"] = host0, []string{"application/json"}, []string{"application/json"}
			viaJSON := httptest.NewRecorder()
			a.h.ServeHTTP(viaJSON, req)
			var js sessionState
			if err := json.Unmarshal(viaJSON.Body.Bytes(), &js); viaJSON.Code != http.StatusOK || err != nil || !js.SignedIn || js.Email != user.Email || sessionCookieOf(viaJSON) == nil {
				t.Errorf("POST %s/login with a JSON body = %d %s, want 200, signed in as %s, a cookie", host0, viaJSON.Code, viaJSON.Body, user.Email)
			}

			// Over TLS the cookie is Secure.
			req = httptest.NewRequest(http.MethodPost, "https://"+host0+"/login", strings.NewReader(url.Values{"email": {user.Email}, "password": {seed.SamplePassword}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			tls := httptest.NewRecorder()
			a.h.ServeHTTP(tls, req)
			if c := sessionCookieOf(tls); c == nil || !c.Secure {
				t.Errorf("POST https://%s/login: cookie %q, want Secure", host0, tls.Header().Values("Set-Cookie"))
			}

			// The same credentials on another tenant's address: refused,
			// as HTML (the form again, a generic message) and as JSON.
			rec = a.signIn(host1, user.Email, seed.SamplePassword, "", false)
			if rec.Code != http.StatusOK || sessionCookieOf(rec) != nil || !strings.Contains(rec.Body.String(), "do not match") {
				t.Errorf("POST %s/login as tenant-0's %s = %d, cookie %v; want 200, the form with the message, no cookie\n%s", host1, user.Email, rec.Code, sessionCookieOf(rec), rec.Body)
			}
			if rec := a.signIn(host1, user.Email, seed.SamplePassword, "", true); rec.Code != http.StatusUnauthorized || sessionCookieOf(rec) != nil {
				t.Errorf("POST %s/login (JSON) as tenant-0's %s = %d %s, want 401 and no cookie", host1, user.Email, rec.Code, rec.Body)
			}

			// tenant-0's cookie copied by hand to tenant-1's address: not
			// signed in there.
			if got := a.state(t, a.h, host1, ck); got.SignedIn || got.Tenant != "tenant-1" {
				t.Errorf("GET %s/login with tenant-0's cookie = %+v, want not signed in", host1, got)
			}

			// Refused sign-ins: one message whatever was wrong, never a 500.
			refused := []struct{ what, email, pw string }{
				{"wrong password", user.Email, "tenancy-sample!"},
				{"unknown email", "nobody@example.com", seed.SamplePassword},
				{"email of another case", strings.ToUpper(user.Email), seed.SamplePassword},
				{"SQL in the email", "' OR 1=1 --", seed.SamplePassword},
			}
			if inactive != nil {
				refused = append(refused, struct{ what, email, pw string }{"inactive user", inactive.Email, seed.SamplePassword})
			}
			for _, r := range refused {
				if rec := a.signIn(host0, r.email, r.pw, "", true); rec.Code != http.StatusUnauthorized || sessionCookieOf(rec) != nil || !strings.Contains(rec.Body.String(), "do not match") {
					t.Errorf("%s: POST %s/login (JSON) = %d %s, want 401 with the generic message, no cookie", r.what, host0, rec.Code, rec.Body)
				}
				if rec := a.signIn(host0, r.email, r.pw, "", false); rec.Code != http.StatusOK || sessionCookieOf(rec) != nil || !strings.Contains(rec.Body.String(), "do not match") {
					t.Errorf("%s: POST %s/login = %d, want 200 with the form and the generic message, no cookie\n%s", r.what, host0, rec.Code, rec.Body)
				}
			}
			if rec := a.signIn(host0, "", "", "", true); rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("POST %s/login (JSON) with no email or password = %d %s, want 422", host0, rec.Code, rec.Body)
			}

			// next: a path on this host is followed; anything that would
			// leave it is replaced by /.
			for next, want := range map[string]string{
				"/subtasks/2/":          "/subtasks/2/",
				"/subtasks/?page=2":     "/subtasks/?page=2",
				"//evil.example/":       "/",
				"/\\evil.example/":      "/",
				"https://evil.example/": "/",
				"https:evil.example":    "/",
				"javascript:alert(1)":   "/",
				"/\t/evil.example/":     "/",
				"subtasks/":             "/",
			} {
				rec := a.signIn(host0, user.Email, seed.SamplePassword, next, false)
				if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
					t.Errorf("POST %s/login next=%q = %d, Location %q; want 303 to %q", host0, next, rec.Code, rec.Header().Get("Location"), want)
				}
			}

			// Sign-out drops the cookie, and revokes the session: a copy
			// kept and replayed is refused by this server at once, and by
			// another over the same database once it has read the
			// sign-outs (which it does every RevocationRefresh).
			second, refresh, err := handlers.NewWithRefresh(a.s, handlers.Options{BaseDomain: a.base, SecretKey: testSecretKey})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.state(t, second, host0, ck); !got.SignedIn {
				t.Fatalf("GET %s/login on a second server before sign-out = %+v, want signed in", host0, got)
			}
			rec = a.serve(a.h, http.MethodPost, host0, "/logout", url.Values{}, false, ck)
			if c := sessionCookieOf(rec); rec.Code != http.StatusSeeOther || c == nil || c.MaxAge >= 0 || c.Value != "" {
				t.Errorf("POST %s/logout = %d, cookie %q; want 303 and the cookie deleted", host0, rec.Code, rec.Header().Values("Set-Cookie"))
			}
			if got := a.state(t, a.h, host0, ck); got.SignedIn {
				t.Errorf("GET %s/login replaying the cookie after sign-out = %+v, want not signed in", host0, got)
			}
			if err := refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := a.state(t, second, host0, ck); got.SignedIn {
				t.Errorf("GET %s/login on a second server replaying the cookie after sign-out = %+v, want not signed in", host0, got)
			}
			third, err := handlers.New(a.s, handlers.Options{BaseDomain: a.base, SecretKey: testSecretKey})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.state(t, third, host0, ck); got.SignedIn {
				t.Errorf("GET %s/login on a server started after the sign-out, replaying the cookie = %+v, want not signed in", host0, got)
			}

			// Cookies that were not issued by this server for this tenant.
			other, err := handlers.New(a.s, handlers.Options{BaseDomain: a.base, SecretKey: "another-secret-key-9876543210"})
			if err != nil {
				t.Fatal(err)
			}
			foreign := sessionCookieOf(a.serve(other, http.MethodPost, host0, "/login", url.Values{"email": {user.Email}, "password": {seed.SamplePassword}}, false))
			if foreign == nil {
				t.Fatal("no cookie from the server with another SECRET_KEY")
			}
			if got := a.state(t, other, host0, foreign); !got.SignedIn {
				t.Fatalf("the other server does not accept its own cookie: %+v", got)
			}
			flipped := []byte(ck.Value)
			flipped[len(flipped)/2] ^= 1
			for what, value := range map[string]string{
				"empty":                 "",
				"not base64":            "%%%not-a-cookie",
				"plain JSON":            `{"t":1,"s":"tenant-0","u":1,"e":"x","x":9999999999}`,
				"one bit changed":       string(flipped),
				"truncated":             ck.Value[:len(ck.Value)/2],
				"signed with other key": foreign.Value,
				"very long":             strings.Repeat("A", 8000),
			} {
				got := a.state(t, a.h, host0, &http.Cookie{Name: "tenancy_session", Value: value})
				if got.SignedIn {
					t.Errorf("GET %s/login with a %s cookie = %+v, want not signed in", host0, what, got)
				}
			}

			// The base domain signs operators in, not tenants' users, and
			// tenants' addresses do not sign operators in.
			base := a.base + ":8080"
			if rec := a.signIn(base, user.Email, seed.SamplePassword, "", true); rec.Code != http.StatusUnauthorized || sessionCookieOf(rec) != nil {
				t.Errorf("POST %s/login as tenant-0's %s = %d %s, want 401 and no cookie", base, user.Email, rec.Code, rec.Body)
			}
			if rec := a.signIn(host0, testOperator, testOperatorPassword, "", true); rec.Code != http.StatusUnauthorized || sessionCookieOf(rec) != nil {
				t.Errorf("POST %s/login as the operator = %d %s, want 401 and no cookie", host0, rec.Code, rec.Body)
			}
			rec = a.signIn(base, testOperator, testOperatorPassword, "/reports/open-subtasks", false)
			op := sessionCookieOf(rec)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/reports/open-subtasks" || op == nil {
				t.Fatalf("POST %s/login as the operator = %d, Location %q; want 303 to next, a cookie", base, rec.Code, rec.Header().Get("Location"))
			}
			if got := a.state(t, a.h, host0, op); got.SignedIn {
				t.Errorf("GET %s/login with the operator's cookie = %+v, want not signed in", host0, got)
			}
			if rec := a.serve(a.h, http.MethodGet, base, "/subtasks/", nil, true, ck); rec.Code != http.StatusUnauthorized {
				t.Errorf("GET %s/subtasks/ with tenant-0's user's cookie = %d, want 401", base, rec.Code)
			}
			if rec := a.serve(a.h, http.MethodGet, base, "/subtasks/", nil, true, op); rec.Code != http.StatusOK {
				t.Errorf("GET %s/subtasks/ as the operator = %d %s, want 200", base, rec.Code, rec.Body)
			}
			// The operator's sign-out revokes its session too.
			if rec := a.serve(a.h, http.MethodPost, base, "/logout", url.Values{}, true, op); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"signed_in":false`) {
				t.Errorf("POST %s/logout as the operator = %d %s, want 200, signed out", base, rec.Code, rec.Body)
			}
			if rec := a.serve(a.h, http.MethodGet, base, "/subtasks/", nil, true, op); rec.Code != http.StatusUnauthorized {
				t.Errorf("GET %s/subtasks/ replaying the operator's cookie after sign-out = %d, want 401", base, rec.Code)
			}
			if rec := a.serve(a.h, http.MethodGet, host0, "/login?next=//evil.example/", nil, false); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "evil.example") {
				t.Errorf("GET %s/login?next=//evil.example/ = %d, want the form without that next\n%s", host0, rec.Code, rec.Body)
			}
		})
	}
}

// TestTenantPagesNeedASignedInUser: every page of a tenant sends a browser
// to the sign-in page (and back afterwards) and tells a JSON client 401,
// unless the request carries a session of that very tenant.
func TestTenantPagesNeedASignedInUser(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, name)
			host0, host1 := "tenant-0."+a.base+":8080", "tenant-1."+a.base+":8080"
			own, other := a.cookieFor(host0), a.cookieFor(host1)
			if own == nil || other == nil {
				t.Fatal("could not sign the seeded users in")
			}
			expired := &http.Cookie{Name: "tenancy_session", Value: "expired-or-forged"}
			pages := []string{"/", "/subtasks/", "/subtasks/2/", "/subtasks/2/?sort=name", "/reports/open-subtasks"}
			for _, path := range pages {
				for _, tt := range []struct {
					what    string
					cookies []*http.Cookie
				}{
					{"no cookie", nil},
					{"tenant-1's cookie", []*http.Cookie{other}},
					{"a forged cookie", []*http.Cookie{expired}},
				} {
					rec := a.serve(a.h, http.MethodGet, host0, path, nil, false, tt.cookies...)
					want := "/login?next=" + url.QueryEscape(path)
					if path == "/" {
						want = "/login"
					}
					if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
						t.Errorf("GET %s%s with %s = %d, Location %q; want 303 to %q", host0, path, tt.what, rec.Code, rec.Header().Get("Location"), want)
					}
					rec = a.serve(a.h, http.MethodGet, host0, path, nil, true, tt.cookies...)
					if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" || strings.Contains(rec.Body.String(), "rows") {
						t.Errorf("GET %s%s as JSON with %s = %d %s, want 401 with WWW-Authenticate and no data", host0, path, tt.what, rec.Code, rec.Body)
					}
				}
			}
			// With its own tenant's session the same pages are served.
			for _, path := range []string{"/subtasks/", "/subtasks/2/"} {
				if rec := a.serve(a.h, http.MethodGet, host0, path, nil, true, own); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"rows"`) {
					t.Errorf("GET %s%s signed in = %d %s, want 200 with rows", host0, path, rec.Code, rec.Body)
				}
			}
			// Sign-in pages themselves are open, and the health check too.
			if rec := a.serve(a.h, http.MethodGet, host0, "/login", nil, false); rec.Code != http.StatusOK {
				t.Errorf("GET %s/login with no session = %d, want 200", host0, rec.Code)
			}
			if rec := a.serve(a.h, http.MethodGet, host0, "/healthz", nil, true); rec.Code != http.StatusOK {
				t.Errorf("GET %s/healthz with no session = %d, want 200", host0, rec.Code)
			}
		})
	}
}

// TestCrossOriginPostsAreRefused: a browser's post from another origin,
// another tenant's address included (the same site, so SameSite=Lax does
// not stop it), is refused before it reaches a handler; one from the
// page's own origin, or from a client that is no browser, is not.
func TestCrossOriginPostsAreRefused(t *testing.T) {
	t.Parallel()
	a := newApp(t, strategy.SingleSchema)
	host0 := "tenant-0." + a.base + ":8080"
	user, _ := seededUsers(t, 0)
	for _, tt := range []struct {
		what    string
		headers map[string]string
		refused bool
	}{
		{"another site", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"another tenant's address", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		{"another tenant's Origin, no Sec-Fetch-Site", map[string]string{"Origin": "http://tenant-1." + a.base + ":8080"}, true},
		{"an evil Origin", map[string]string{"Origin": "https://evil.example"}, true},
		{"the page's own origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + host0}, false},
		{"typed by the user", map[string]string{"Sec-Fetch-Site": "none"}, false},
		{"no browser headers", nil, false},
	} {
		for _, asJSON := range []bool{false, true} {
			form := url.Values{"email": {user.Email}, "password": {seed.SamplePassword}}
			req := httptest.NewRequest(http.MethodPost, "http://placeholder/login", strings.NewReader(form.Encode()))
			req.Host = host0
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if asJSON {
				req.Header.Set("Accept", "application/json")
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			a.h.ServeHTTP(rec, req)
			switch {
			case tt.refused && (rec.Code != http.StatusForbidden || sessionCookieOf(rec) != nil || !strings.Contains(rec.Body.String(), "another site")):
				t.Errorf("POST %s/login from %s (JSON %v) = %d %s, want 403 saying why, no cookie", host0, tt.what, asJSON, rec.Code, rec.Body)
			case !tt.refused && sessionCookieOf(rec) == nil:
				t.Errorf("POST %s/login from %s (JSON %v) = %d %s, want signed in", host0, tt.what, asJSON, rec.Code, rec.Body)
			}
			if asJSON && tt.refused && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Errorf("POST %s/login from %s asking for JSON answered %q, want JSON", host0, tt.what, rec.Header().Get("Content-Type"))
			}
		}
	}
}

// TestSignInIsLimited: past the failures allowed, sign-ins of that email
// are refused with 429 and Retry-After before any password check, the
// right password included, while another user of the same tenant, from
// another address, still signs in.
func TestSignInIsLimited(t *testing.T) {
	t.Parallel()
	a := newApp(t, strategy.SingleSchema)
	h, err := handlers.New(a.s, handlers.Options{BaseDomain: a.base, SecretKey: testSecretKey,
		SignInLimits: handlers.SignInLimits{AccountFailures: 2, AccountEvery: time.Hour, AddressFailures: 3, AddressEvery: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	host0 := "tenant-0." + a.base + ":8080"
	users := seed.Generate(seedOptions(), 0, "").Users
	var active []models.User
	for _, u := range users {
		if u.IsActive {
			active = append(active, u)
		}
	}
	if len(active) < 2 {
		t.Fatalf("the seed gave tenant-0 %d active users, want 2", len(active))
	}
	victim, other := active[0], active[1]
	post := func(email, pw, remote string, asJSON bool) *httptest.ResponseRecorder {
		form := url.Values{"email": {email}, "password": {pw}}
		req := httptest.NewRequest(http.MethodPost, "http://placeholder/login", strings.NewReader(form.Encode()))
		req.Host, req.RemoteAddr = host0, remote
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if asJSON {
			req.Header.Set("Accept", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, st := range []struct {
		what, email, pw, remote string
		asJSON                  bool
		want                    int
	}{
		{"first wrong password", victim.Email, "guess-1", "192.0.2.1:1000", true, http.StatusUnauthorized},
		{"second wrong password", victim.Email, "guess-2", "192.0.2.1:1001", false, http.StatusOK},
		{"third try, JSON", victim.Email, "guess-3", "192.0.2.1:1002", true, http.StatusTooManyRequests},
		{"third try, the form", victim.Email, "guess-3", "192.0.2.1:1003", false, http.StatusTooManyRequests},
		{"the right password while locked", victim.Email, seed.SamplePassword, "198.51.100.1:1000", true, http.StatusTooManyRequests},
		{"another user from another address", other.Email, seed.SamplePassword, "198.51.100.1:1001", true, http.StatusOK},
		{"the address's third failure", "nobody@example.com", "x", "192.0.2.1:1004", true, http.StatusUnauthorized},
		{"the address is spent, for any email", other.Email, seed.SamplePassword, "192.0.2.1:1005", true, http.StatusTooManyRequests},
	} {
		rec := post(st.email, st.pw, st.remote, st.asJSON)
		if rec.Code != st.want {
			t.Fatalf("%s: POST /login = %d %s, want %d", st.what, rec.Code, rec.Body, st.want)
		}
		if st.want == http.StatusTooManyRequests {
			if ra := rec.Header().Get("Retry-After"); ra == "" || ra == "0" || sessionCookieOf(rec) != nil || !strings.Contains(rec.Body.String(), "Too many failed sign-ins") {
				t.Errorf("%s: 429 with Retry-After %q, cookie %v, body %s; want a positive Retry-After, no cookie, the reason", st.what, ra, sessionCookieOf(rec), rec.Body)
			}
		}
	}
}
