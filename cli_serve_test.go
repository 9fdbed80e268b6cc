package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// serveRun is a `tenancy serve` running in the background of a test, as
// main would run it; stop cancels its context, as SIGTERM does.
type serveRun struct {
	addr           string
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan error
	once           sync.Once
	err            error
}

// startServe runs serve with flags on a loopback port over the deployment
// env and returns once /healthz answers; it is stopped at cleanup.
func startServe(t *testing.T, env map[string]string, flags ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{cancel: cancel, done: make(chan error, 1)}
	args := append([]string{"serve", "--addr", "127.0.0.1:0"}, flags...)
	go func() { r.done <- run(ctx, args, pgtest.Getenv(env), &r.stdout, &r.stderr) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("tenancy %v after cancel: %v", args, err)
		}
	})
	r.addr = waitForAddr(t, &r.stdout, r.done)
	waitHealthy(t, r.addr)
	return r
}

func (r *serveRun) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// servableEnv is a deployment that serve can start on: set up, not seeded
// (the tests here need /healthz only).
func servableEnv(t *testing.T) map[string]string {
	t.Helper()
	env := pgtest.Env(t, strategy.SingleSchema, nil)
	if out, err := runCmd(t, env, "setup"); err != nil {
		t.Fatalf("tenancy setup: %v\n%s", err, out)
	}
	return env
}

// dialAndSend opens a connection to addr, closed at cleanup, and writes
// request on it; it does not wait for the write when the server stops
// reading.
func dialAndSend(t *testing.T, addr, request string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() { _, _ = io.WriteString(conn, request) }()
	return conn
}

// readResponse reads one response from conn, waiting at most wait, and
// reads its body so that conn can carry the next one.
func readResponse(conn net.Conn, wait time.Duration) (*http.Response, error) {
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	// A body cut short by a reset (the server hanging up on a request it
	// refused) changes nothing about the status.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// outcome is what became of a request: its status or its error.
func outcome(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

const healthzRequest = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"

// TestServeDisconnectsSlowClients: a client that sends its request slower
// than the read timeout allows loses its connection, whatever part it is
// slow in. Without a read deadline, the server waits on it for good.
func TestServeDisconnectsSlowClients(t *testing.T) {
	t.Parallel()
	srv := startServe(t, servableEnv(t), "--read-timeout", "1s")
	tests := []struct {
		name, request string
	}{
		{"body declared, none sent", healthzRequest + "Content-Length: 100\r\n\r\n"},
		{"half the body sent", healthzRequest + "Content-Length: 100\r\n\r\n" + strings.Repeat("x", 50)},
		{"headers never finished", healthzRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn := dialAndSend(t, srv.addr, tt.request)
			// Ten times the read timeout: a server that closes the
			// connection at all closes it long before.
			if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			// Whatever the server answers, the connection must end (EOF,
			// or a reset); only our own deadline means it was held.
			if _, err := io.Copy(io.Discard, conn); isTimeout(err) {
				t.Errorf("%s: the server still held the connection after 10s, with --read-timeout 1s", tt.name)
			}
		})
	}
}

// TestServeHeaderLimit: headers a browser could send are served, and ones
// far beyond (net/http accepts up to 1 MiB by default) get 431.
func TestServeHeaderLimit(t *testing.T) {
	t.Parallel()
	srv := startServe(t, servableEnv(t))
	tests := []struct {
		size       int
		wantStatus int
	}{
		{1 << 10, http.StatusOK},
		{16 << 10, http.StatusOK},
		{64 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{1000000, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		conn := dialAndSend(t, srv.addr, healthzRequest+"X-Filler: "+strings.Repeat("a", tt.size)+"\r\nConnection: close\r\n\r\n")
		resp, err := readResponse(conn, 10*time.Second)
		if err != nil {
			t.Errorf("GET /healthz with a %d-byte header: %v", tt.size, err)
			continue
		}
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("GET /healthz with a %d-byte header = %d, want %d", tt.size, resp.StatusCode, tt.wantStatus)
		}
	}
}

// TestServeConnectionLimit: with --max-client-conns 2 and two clients
// keeping their connections, a third is not served until one of them
// leaves. Without a limit it is served at once, and under a flood of such
// clients the server runs out of file descriptors, for its database
// connections too.
func TestServeConnectionLimit(t *testing.T) {
	t.Parallel()
	const limit = 2
	srv := startServe(t, servableEnv(t), "--max-client-conns", strconv.Itoa(limit))
	request := healthzRequest + "\r\n"
	var held []net.Conn
	for i := range limit {
		conn := dialAndSend(t, srv.addr, request)
		if resp, err := readResponse(conn, 10*time.Second); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("client %d of %d: GET /healthz = %s; want 200 within the limit", i+1, limit, outcome(resp, err))
		}
		held = append(held, conn) // kept alive, and so counted
	}
	extra := dialAndSend(t, srv.addr, request)
	// A second is ample for an answer from a server that has a free
	// connection; the check cannot pass by chance, only by a slow server
	// hiding a missing limit.
	if resp, err := readResponse(extra, time.Second); !isTimeout(err) {
		t.Fatalf("client %d with %d connections held: GET /healthz = %s; want no answer until one is freed", limit+1, limit, outcome(resp, err))
	}
	held[0].Close()
	if resp, err := readResponse(extra, 10*time.Second); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("client %d after one connection was freed: GET /healthz = %s; want 200", limit+1, outcome(resp, err))
	}
}

func TestDefaultClientConns(t *testing.T) {
	budget := 4
	tests := []struct {
		name      string
		opts      strategy.Options
		openFiles int
		want      int // 0: an error
	}{
		{"singleschema", strategy.Options{Strategy: strategy.SingleSchema, MaxConns: budget}, 1024, 1024 - 2*4 - filesReserve},
		{"singleschema, a large limit", strategy.Options{Strategy: strategy.SingleSchema, MaxConns: budget}, 1 << 20, 1<<20 - 2*4 - filesReserve},
		{"multischema: tenant and all-tenants pools, as singleschema", strategy.Options{Strategy: strategy.MultiSchema, MaxConns: budget, TenantCount: 1000}, 1024, 1024 - 2*4 - filesReserve},
		{"multidb, one budget per tenant", strategy.Options{Strategy: strategy.MultiDB, MaxConns: budget, TenantCount: 5}, 1024, 1024 - (5*4 + 4 + 2) - filesReserve},
		{"multidb, MULTIDB_OPEN_CONNS", strategy.Options{Strategy: strategy.MultiDB, MaxConns: budget, TenantCount: 5, TenantConns: 100}, 1024, 1024 - (100 + 4 + 2) - filesReserve},
		{"multidb, tenants past half the limit", strategy.Options{Strategy: strategy.MultiDB, MaxConns: budget, TenantCount: 1000}, 1024, 1024 - 512 - filesReserve},
		{"a small limit", strategy.Options{Strategy: strategy.SingleSchema, MaxConns: budget}, 100, 100 - 2*4 - filesReserve},
		{"no room", strategy.Options{Strategy: strategy.SingleSchema, MaxConns: budget}, filesReserve, 0},
	}
	for _, tt := range tests {
		got, err := defaultClientConns(tt.openFiles, databaseConns(tt.opts))
		if tt.want == 0 {
			if err == nil || !strings.Contains(err.Error(), "ulimit -n") || !strings.Contains(err.Error(), "--max-client-conns") {
				t.Errorf("%s: defaultClientConns(%d, ...) = %d, %v; want an error saying to raise the limit or set --max-client-conns", tt.name, tt.openFiles, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: defaultClientConns(%d, ...) = %d, %v; want %d", tt.name, tt.openFiles, got, err, tt.want)
		}
	}
}

// TestServeShutdownCutsOffSlowClients: stopping serve (SIGTERM, Ctrl-C)
// while a client is in the middle of a request it sends too slowly waits
// for it no longer than --shutdown-grace, then closes it, says so, and
// succeeds. Before, it waited 10 s and failed.
func TestServeShutdownCutsOffSlowClients(t *testing.T) {
	t.Parallel()
	// Generous, yet well short of the 10 s the old shutdown waited.
	const grace, margin = time.Second, 7 * time.Second
	// A read timeout past the test, so that only the shutdown can end the
	// slow client's request.
	srv := startServe(t, servableEnv(t), "--shutdown-grace", grace.String(), "--read-timeout", "5m")
	slow := dialAndSend(t, srv.addr, "GET /healthz HTTP/1.1\r\nHost: slow.invalid\r\nContent-Length: 100\r\n\r\n")
	// The request is logged once its handler is done and before net/http
	// waits for the body it was promised: from then on the connection is
	// in a request, which Shutdown waits for.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.stderr.String(), "host=slow.invalid") {
		if time.Now().After(deadline) {
			t.Fatalf("the slow client's request was never logged:\n%s", srv.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	start := time.Now()
	err := srv.stop()
	if took := time.Since(start); err != nil || took > grace+margin {
		t.Errorf("serve after cancel with a slow client: returned %v after %s; want nil within the %s grace and a %s margin", err, took.Round(time.Millisecond), grace, margin)
	}
	if want := "serve: stopped; cut off 1 connection still open after the 1s grace"; !strings.Contains(srv.stdout.String(), want) {
		t.Errorf("serve output lacks %q:\n%s", want, srv.stdout.String())
	}
	if err := slow.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, slow); isTimeout(err) {
		t.Errorf("the slow client's connection was still open 10s after serve returned")
	}
}

// TestServeMetricsOff: METRICS=off serves no /metrics page, and serve
// does not announce one.
func TestServeMetricsOff(t *testing.T) {
	t.Parallel()
	env := servableEnv(t)
	env["METRICS"] = "off"
	srv := startServe(t, env)
	for _, path := range []string{"/metrics", "/metrics/tenants"} {
		if status, body := getFrom(t, srv.addr, "localhost", path); status != http.StatusNotFound {
			t.Errorf("METRICS=off: GET localhost %s = %d, want 404:\n%s", path, status, body)
		}
	}
	if out := srv.stdout.String(); strings.Contains(out, "/metrics") {
		t.Errorf("METRICS=off: serve announced metrics:\n%s", out)
	}
}
