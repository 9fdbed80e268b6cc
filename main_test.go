package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"tenancy/internal/pgtest"
	"tenancy/seed"
	"tenancy/strategy"
)

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		// Started by execServer (compare) as the tenancy command.
		main()
		os.Exit(0)
	}
	gin.SetMode(gin.ReleaseMode)
	// compare's Citus nodes (localcluster) go in the temporary directory:
	// there, the one pgtest's throwaway clusters use, for the same reason.
	if d := pgtest.ScratchDir(); d != "" {
		os.Setenv("TMPDIR", d)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, pgtest.Getenv(env), &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestHelpForEveryCommand(t *testing.T) {
	env := map[string]string{}
	for _, c := range append(commands(), command{name: ""}) {
		args := []string{"--help"}
		if c.name != "" {
			args = []string{c.name, "--help"}
		}
		out, err := runCmd(t, env, args...)
		if err != nil || !strings.Contains(out, "Usage: tenancy "+c.name) || !strings.Contains(out, "STRATEGY") {
			t.Errorf("tenancy %v: err %v, output:\n%s", args, err, out)
		}
	}
}

func TestCommandLineMistakes(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
		code int
	}{
		{nil, nil, "no command", 2},
		{[]string{"frobnicate"}, nil, `unknown command "frobnicate"`, 2},
		{[]string{"seed", "--acounts", "3"}, nil, "acounts", 2},
		{[]string{"seed", "--accounts", "x"}, nil, "accounts", 2},
		{[]string{"setup", "extra"}, nil, `unexpected argument "extra"`, 2},
		{[]string{"setup"}, map[string]string{"STRATEGY": "sharded"}, "STRATEGY", 1},
		{[]string{"serve"}, map[string]string{}, "SECRET_KEY", 1},
		{[]string{"serve", "--read-timeout", "0s", "--write-timeout", "-1s"}, nil, "--read-timeout 0s: want a positive duration", 2},
		{[]string{"serve", "--write-timeout", "-1s"}, nil, "--write-timeout -1s: want a positive duration", 2},
		{[]string{"serve", "--max-client-conns", "0"}, nil, "--max-client-conns 0: want at least 1", 2},
		{[]string{"report", "--timeout", "0s"}, nil, "--timeout 0s: want a positive duration", 2},
		{[]string{"report", "--concurrency", "0"}, nil, "--concurrency 0: want at least 1", 2},
		{[]string{"report", "extra"}, nil, `unexpected argument "extra"`, 2},
		{[]string{"migrate", "--jobs", "-1"}, nil, "--jobs -1: want 1 to 1000", 2},
		{[]string{"migrate", "--canary", "-2"}, nil, "--canary -2", 2},
		{[]string{"seed", "--accounts", "-1"}, nil, "--accounts -1", 1},
		{[]string{"seed", "--min-users", "9"}, nil, "--min-users 9 is greater than --max-users 5", 1},
	}
	for _, tt := range tests {
		_, err := runCmd(t, tt.env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || exitCode(err) != tt.code {
			t.Errorf("tenancy %v: err = %v (exit %d), want one containing %q, exit %d", tt.args, err, exitCode(err), tt.want, tt.code)
		}
	}
}

// checksumOf is the checksum seed should print for the default options with
// accounts accounts and at most maxProjects projects each.
func checksumOf(accounts, maxProjects int) string {
	o := seed.DefaultOptions()
	o.Accounts, o.MaxProjects = accounts, maxProjects
	d := make([]seed.Digest, accounts)
	for i := range d {
		a := seed.Generate(o, i, mustHash(o.Seed))
		d[i] = seed.AccountDigest(&a)
	}
	return seed.Checksum(d)
}

func mustHash(s int64) string {
	h, err := seed.HashPassword(seed.SamplePassword, s)
	if err != nil {
		panic(err)
	}
	return h
}

// TestTheReadmeFlow runs what `make up` runs, for each strategy: setup,
// seed --skip-existing (twice), serve, and a request to a tenant's page.
func TestTheReadmeFlow(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, name, nil)
			firstSignIn, ok := seed.SignInEmail(seed.DefaultOptions(), 0)
			if !ok {
				t.Fatal("the default seed gives tenant-0 no active user")
			}
			steps := []struct {
				args []string
				want []string // in the output
			}{
				{[]string{"setup"}, []string{"created, migrated 0 -> ", "setup: done"}},
				{[]string{"setup"}, []string{"up to date", "setup: done"}},
				{[]string{"migrate"}, []string{"up to date"}},
				{[]string{"seed", "--skip-existing", "--accounts", "3", "--max-projects", "4"},
					[]string{"3/3 accounts 100%", "seed: created 3 accounts", "checksum " + checksumOf(3, 4), "seed: sign in at tenant-0.localhost/login (on serve's port) as " + firstSignIn + ", password tenancy-sample\n"}},
				{[]string{"seed", "--skip-existing", "--accounts", "3"}, []string{"3 of the 3 accounts already exist", "seed: created 0 accounts"}},
				{[]string{"seed", "--accounts", "2"}, nil}, // refused: see below
				{[]string{"seed", "--reset", "--accounts", "2", "--max-projects", "4", "--quiet"},
					[]string{"seed: created 2 accounts", "after removing 3 existing accounts", "checksum " + checksumOf(2, 4)}},
			}
			for _, st := range steps {
				out, err := runCmd(t, env, st.args...)
				if st.want == nil {
					if err == nil || !strings.Contains(err.Error(), "tenant-0, tenant-1") || !strings.Contains(err.Error(), "--reset") {
						t.Errorf("tenancy %v over existing accounts: err = %v, want one naming them and --reset", st.args, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("tenancy %v: %v\n%s", st.args, err, out)
				}
				for _, w := range st.want {
					if !strings.Contains(out, w) {
						t.Errorf("tenancy %v output lacks %q:\n%s", st.args, w, out)
					}
				}
				if slices.Contains(st.args, "--quiet") && strings.Count(out, "\n") != 1 {
					t.Errorf("tenancy %v printed more than its summary:\n%s", st.args, out)
				}
			}

			ctx, cancel := context.WithCancel(context.Background())
			var stdout syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, pgtest.Getenv(env), &stdout, io.Discard)
			}()
			addr := waitForAddr(t, &stdout, done)
			waitHealthy(t, addr)

			// Pages need a signed-in user: serve signs a seeded one in with
			// its SECRET_KEY.
			o := seed.DefaultOptions()
			o.Accounts, o.MaxProjects = 2, 4
			cookie, err := signInSeeded(addr, o, 0)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/subtasks/", nil)
			req.Host = "tenant-0.localhost"
			req.Header.Set("Accept", "application/json")
			req.AddCookie(cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"account":"tenant-0"`) {
				t.Errorf("GET tenant-0 /subtasks/ signed in = %d %s", resp.StatusCode, body)
			}
			// serve measures by default, and tells the base domain's
			// operators: one made with `tenancy operator create`.
			if out, err := runOperatorCmd(t, env, "correct horse battery staple\n", "create", "ops@example.com", "--password-stdin"); err != nil {
				t.Fatalf("tenancy operator create: %v\n%s", err, out)
			}
			if _, body := getFrom(t, addr, "localhost", "/metrics"); strings.Contains(body, "tenancy_http_requests_total") || !strings.Contains(body, "Sign in") {
				t.Errorf("GET localhost /metrics signed out: want the sign-in form, no metrics:\n%s", body)
			}
			opCookie, err := signIn(addr, "localhost", "ops@example.com", "correct horse battery staple")
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct{ path, want string }{
				{"/metrics", `tenancy_http_requests_total{route="/subtasks/",status="200"} 1` + "\n"},
				{"/metrics", `tenancy_db_pool_open_connections{pool=`},
				{"/metrics", `,strategy="` + name + `"}`},
				{"/metrics/tenants", `"tenants":[{"tenant":"tenant-0","requests":2}]`}, // the sign-in and the page
			} {
				if status, body := getFrom(t, addr, "localhost", tt.path, opCookie); status != http.StatusOK || !strings.Contains(body, tt.want) {
					t.Errorf("GET localhost %s = %d, want 200 with %q:\n%s", tt.path, status, tt.want, body)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve after cancel: %v", err)
			}
			if !strings.Contains(stdout.String(), "serve: stopped") {
				t.Errorf("serve output lacks its stop line:\n%s", stdout.String())
			}
		})
	}
}

// signInSeeded signs the first active user that seed, run with o, gives
// tenant i in at the server at addr, and returns the session cookie.
func signInSeeded(addr string, o seed.Options, i int) (*http.Cookie, error) {
	email := ""
	for _, u := range seed.Generate(o, i, "").Users {
		if u.IsActive {
			email = u.Email
			break
		}
	}
	return signIn(addr, strategy.Slug(i)+".localhost", email, seed.SamplePassword)
}

// signIn signs email in at host (a tenant's, or the base domain for an
// operator) at the server at addr, and returns the session cookie.
func signIn(addr, host, email, password string) (*http.Cookie, error) {
	form := url.Values{"email": {email}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "tenancy_session" && resp.StatusCode == http.StatusOK {
			return c, nil
		}
	}
	return nil, fmt.Errorf("POST %s/login as %q = %d %s, cookies %v; want 200 and the session cookie", host, email, resp.StatusCode, body, resp.Cookies())
}

// getFrom GETs path from the server at addr as host, and returns the
// status and body.
func getFrom(t *testing.T, addr, host, path string, cookies ...*http.Cookie) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

var listening = regexp.MustCompile(`on (127\.0\.0\.1:\d+)`)

func waitForAddr(t *testing.T, out *syncBuffer, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended before listening: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not say where it listens:\n%s", out.String())
	return ""
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	// A connection for each try, closed after the answer: a kept-alive one
	// would count against the server's --max-client-conns.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/healthz never answered 200", addr)
}

func TestServeRefusesASuperuser(t *testing.T) {
	t.Parallel()
	env := pgtest.Env(t, strategy.SingleSchema, nil)
	if out, err := runCmd(t, env, "setup"); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	su := env["PGDATABASE"] + "_su"
	t.Cleanup(func() { pgtest.Drop(t, "", su) })
	if _, err := pgtest.Admin(t, "postgres").Exec(fmt.Sprintf(`CREATE ROLE %q LOGIN SUPERUSER`, su)); err != nil {
		t.Fatal(err)
	}
	env["APP_DB_USER"] = su
	_, err := runCmd(t, env, "serve", "--addr", "127.0.0.1:0")
	if !errors.Is(err, strategy.ErrUnsafeRole) || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), "superuser") {
		t.Errorf("serve as a superuser: err = %v, want a refusal naming the superuser", err)
	}
}
