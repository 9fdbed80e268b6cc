package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"tenancy/configs"
	"tenancy/handlers"
	"tenancy/internal/metrics"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

// What a client's connection may take, chosen against clients that hold
// connections (and the file descriptors behind them) open by sending
// slowly or never: without a read deadline, a request that declared a body
// and sent none kept its connection for good.
const (
	// defaultReadTimeout bounds a whole request. The pages are GETs
	// without a body, which a client sends in one packet; 15s leaves room
	// for a phone on a bad network and still frees a slow client's
	// connection within seconds.
	defaultReadTimeout = 15 * time.Second
	// readHeaderTimeout bounds the headers alone (or the read timeout, if
	// shorter).
	readHeaderTimeout = 10 * time.Second
	// writeMargin is what the write timeout allows beyond the handlers'
	// database time: a page is at most tens of kilobytes to render and
	// send, so a request that used all its database time still gets its
	// answer (a 503) out.
	writeMargin = 5 * time.Second
	// idleTimeout is how long a kept-alive connection may wait for its
	// next request.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes bounds a request's headers. Browsers send a kilobyte
	// or two, and this app sets no cookies; net/http's default, 1 MiB, let
	// each connection make the server hold a megabyte for nothing. Over
	// the limit (plus net/http's 4 KiB of slack) a request gets 431.
	maxHeaderBytes = 32 << 10
	// defaultShutdownGrace is how long a stopping server lets requests in
	// flight finish. A page takes milliseconds; what is still open after a
	// few seconds is a client sending slowly or a request stuck on the
	// database, neither worth holding up a deploy for.
	defaultShutdownGrace = 5 * time.Second
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Serves the subtask list of each tenant at http://<slug>.<BASE_DOMAIN>:<port>/ and,\nfor singleschema and multischema, all tenants at http://<BASE_DOMAIN>:<port>/.")
	addr := fs.String("addr", ":8080", "address to listen on")
	readTimeout := fs.Duration("read-timeout", defaultReadTimeout,
		"longest a client may take to send a whole request, headers and body; a slower one is disconnected")
	writeTimeout := fs.Duration("write-timeout", handlers.DefaultRequestTimeout+writeMargin,
		"longest from the end of a request's headers to the end of its answer; keep it above the\n"+
			fmt.Sprintf("%s a request may spend in the database, or slow pages are cut off instead of answered 503", handlers.DefaultRequestTimeout))
	shutdownGrace := fs.Duration("shutdown-grace", defaultShutdownGrace,
		"on SIGTERM or Ctrl-C, how long requests in flight may finish before the connections still open are closed")
	maxClientConns := fs.Int("max-client-conns", 0,
		"client connections served at once; more wait in the kernel's queue until one closes (default: the\n"+
			fmt.Sprintf("open-file limit less the database connections and %d files)", filesReserve))
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	var problems []error
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"read-timeout", *readTimeout}, {"write-timeout", *writeTimeout}, {"shutdown-grace", *shutdownGrace}} {
		if d.value <= 0 {
			problems = append(problems, fmt.Errorf("--%s %s: want a positive duration such as 15s", d.name, d.value))
		}
	}
	if flagGiven(fs, "max-client-conns") && *maxClientConns < 1 {
		problems = append(problems, fmt.Errorf("--max-client-conns %d: want at least 1", *maxClientConns))
	}
	if err := errors.Join(problems...); err != nil {
		return usageError{fmt.Errorf("serve: %w", err)}
	}
	cfg, err := configs.Load(getenv)
	if err != nil {
		return err
	}
	if err := cfg.RequireSecretKey(); err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		// The server's live heap is a few MB, so at Go's default (collect
		// when the heap doubles) it collects many times a second under load.
		// Collecting when it has grown fourfold served the list page about
		// 15% faster on two cores (3,372 to 3,885 req/s) and still keeps it
		// to tens of MB. GOGC, when set, decides instead.
		debug.SetGCPercent(400)
	}
	log := newLogger(stderr)
	cfg.Strategy.Logger = log
	openFiles, err := openFileLimit()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	dbConns := databaseConns(cfg.Strategy)
	if !flagGiven(fs, "max-client-conns") {
		if *maxClientConns, err = defaultClientConns(openFiles, dbConns); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if *maxClientConns+dbConns+filesReserve > openFiles {
		log.Warn("the open-file limit may not hold every client and database connection; past it, new connections fail. "+
			"Raise it (ulimit -n), lower --max-client-conns, or set MULTIDB_OPEN_CONNS to what multidb may hold",
			"open_files", openFiles, "max_client_conns", *maxClientConns, "database_conns", dbConns, "reserve", filesReserve)
	}
	s, err := strategies.Open(ctx, cfg.Strategy)
	if err != nil {
		if errors.Is(err, strategy.ErrUnavailable) {
			return fmt.Errorf("serve: cannot reach PostgreSQL as %s: %w (is it running, and has `tenancy setup` been run?)", cfg.Strategy.AppUser, err)
		}
		return fmt.Errorf("serve: refusing to start: %w", err)
	}
	defer s.Close()
	var m *metrics.Metrics
	if cfg.Metrics {
		tenants, err := metrics.NewTopTenants(time.Now)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		if m, err = metrics.New(s, tenants); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	h, err := handlers.New(s, handlers.Options{BaseDomain: cfg.BaseDomain, HideAllTenants: !cfg.AllTenantsView, Metrics: m, SecretKey: cfg.SecretKey, SecretKeyFallbacks: cfg.SecretKeyFallbacks, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", *addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(readHeaderTimeout, *readTimeout),
		ReadTimeout:       *readTimeout,
		WriteTimeout:      *writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	var conns openConns
	srv.ConnState = conns.track
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(stdout, "serving %s on %s: http://tenant-0.%s:%d/ (a tenant), http://%s:%d/ (%s)\n",
		s.Name(), ln.Addr(), cfg.BaseDomain, port, cfg.BaseDomain, port, baseDescription(s.Name()))
	if m != nil {
		fmt.Fprintf(stdout, "serve: metrics at http://%s:%d/metrics and the busiest tenants at http://%s:%d/metrics/tenants (METRICS=off turns them off)\n",
			cfg.BaseDomain, port, cfg.BaseDomain, port)
	}
	fmt.Fprintf(stdout, "serve: %d client connections at once (open-file limit %d); a request must arrive within %s, its answer leave within %s\n",
		*maxClientConns, openFiles, *readTimeout, *writeTimeout)
	errc := make(chan error, 1)
	// Past the limit, connections wait in the kernel's accept queue rather
	// than take the descriptors the database connections need.
	go func() { errc <- srv.Serve(netutil.LimitListener(ln, *maxClientConns)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	graceCtx, cancel := context.WithTimeout(context.Background(), *shutdownGrace)
	defer cancel()
	err = srv.Shutdown(graceCtx)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// Stopping is what was asked: the clients still connected are
		// slow ones, or ones waiting on the database, and are cut off.
		cut := conns.open()
		// Shutdown has closed the listener, so Close can only fail on
		// that; it closes every connection regardless.
		_ = srv.Close()
		fmt.Fprintf(stdout, "serve: stopped; cut off %d %s still open after the %s grace\n", cut, plural(cut, "connection"), *shutdownGrace)
	case err != nil:
		return fmt.Errorf("serve: shut down: %w", err)
	default:
		fmt.Fprintln(stdout, "serve: stopped")
	}
	return nil
}

// openConns counts the server's client connections, so that a shutdown
// that ran out of grace can say how many it cut off.
type openConns struct{ n atomic.Int64 }

func (o *openConns) track(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		o.n.Add(1)
	case http.StateHijacked, http.StateClosed:
		o.n.Add(-1)
	}
}

func (o *openConns) open() int64 { return o.n.Load() }

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func baseDescription(name string) string {
	if name != strategy.MultiDB {
		return "all tenants"
	}
	return "list of tenants"
}

// filesReserve is what serve keeps of its open-file limit for all but
// client and database connections: the standard streams, the listener,
// the runtime's poller, DNS and time zone files, with room to spare.
const filesReserve = 64

// openFileLimit is how many files this process may have open. Go raised
// the soft limit to the hard one as the process started (os does, since
// Go 1.19), so this is all there is.
func openFileLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("read the open-file limit to size the client connections (or set --max-client-conns): %w", err)
	}
	return int(min(rl.Cur, math.MaxInt32)), nil
}

// databaseConns is the most database connections the strategy's pools may
// hold at once as configured: singleschema's and multischema's tenant and
// all-tenants pools hold DB_MAX_CONNS each; multidb holds MULTIDB_OPEN_CONNS across its
// tenant databases (unset, at most one budget per tenant), up to one more
// budget while pools change hands, and two for health checks.
func databaseConns(o strategy.Options) int {
	budget := o.MaxConns
	if budget <= 0 {
		budget = strategy.DefaultMaxConns()
	}
	if o.Strategy != strategy.MultiDB {
		return 2 * budget
	}
	open := o.TenantConns
	if open <= 0 {
		open = max(1, o.TenantCount) * budget
	}
	return open + budget + 2
}

// defaultClientConns is how many client connections serve takes at once
// unless told: what the open-file limit leaves after the database
// connections and filesReserve, so that clients can never take the
// descriptors the database needs. The database is counted for at most
// half the limit: multidb without MULTIDB_OPEN_CONNS is counted one
// budget per tenant, but holds at most three quarters of PostgreSQL's
// max_connections, far fewer when tenants are many.
func defaultClientConns(openFiles, dbConns int) (int, error) {
	n := openFiles - min(dbConns, openFiles/2) - filesReserve
	if n < 1 {
		return 0, fmt.Errorf("the open-file limit, %d, leaves no room for client connections: raise it (ulimit -n) or set --max-client-conns", openFiles)
	}
	return n, nil
}
