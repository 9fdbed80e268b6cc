package pgtest

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BouncerOptions configure a test PgBouncer.
type BouncerOptions struct {
	// ServerHost and ServerPort are the PostgreSQL server behind it; the
	// test's PGHOST and PGPORT (default 127.0.0.1:5432) when empty.
	ServerHost string
	ServerPort int
	// Users may log in. Authentication is trust, so PostgreSQL itself must
	// let these roles in without a password (as the test cluster does on
	// loopback).
	Users []string
	// PoolSize is default_pool_size: server connections per user and
	// database (2 when zero). Keep it below the clients' pool sizes so that
	// server connections are really shared between clients.
	PoolSize int
	// MaxDBConns and MaxUserConns are max_db_connections (server
	// connections per database) and max_user_connections (per user, over
	// every database: with one app role, the bound on what PgBouncer holds
	// in all); 0 leaves them unlimited.
	MaxDBConns, MaxUserConns int
	// ServerIdleTimeout is server_idle_timeout: how long an unused server
	// connection is kept (PgBouncer's default, 600 s, when zero).
	ServerIdleTimeout time.Duration
}

// PgBouncer is a PgBouncer process in transaction pooling mode on a free
// loopback port, stopped when the test ends.
type PgBouncer struct {
	Port int
	dir  string
}

// StartPgBouncer starts Debian's pgbouncer with a configuration generated
// into a temporary directory. The test fails (CI=true) or is skipped when
// pgbouncer is not installed.
func StartPgBouncer(t testing.TB, o BouncerOptions) *PgBouncer {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer" // Debian's place, outside a non-root PATH
		if _, statErr := os.Stat(bin); statErr != nil {
			Need(t, "pgtest: pgbouncer is not installed; run `make test` (it installs it) or `apt-get install pgbouncer`")
		}
	}
	if o.ServerHost == "" {
		o.ServerHost = envOr("PGHOST", "127.0.0.1")
	}
	if o.ServerPort == 0 {
		o.ServerPort, _ = strconv.Atoi(envOr("PGPORT", "5432"))
	}
	if o.PoolSize == 0 {
		o.PoolSize = 2
	}
	su := lookupServiceUser(t)
	dir := su.privateDir(t, "tenancy-pgbouncer-")
	var users strings.Builder
	for _, u := range o.Users {
		fmt.Fprintf(&users, "%q \"\"\n", u)
	}
	su.writeFile(t, filepath.Join(dir, "userlist.txt"), users.String())

	// A port can be taken between FreePort and the listen: try a few.
	var lastErr error
	for range 3 {
		port := FreePort(t)
		su.writeFile(t, filepath.Join(dir, "pgbouncer.ini"), bouncerConfig(dir, port, o))
		args := []string{filepath.Join(dir, "pgbouncer.ini")}
		if su.name != "" {
			args = append([]string{"-u", su.name}, args...) // pgbouncer refuses to run as root
		}
		cmd := exec.Command(bin, args...)
		logFile, err := os.Create(filepath.Join(dir, "pgbouncer.out"))
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			logFile.Close()
			t.Fatalf("pgtest: start pgbouncer: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); logFile.Close() }()
		if lastErr = waitForPort(port, exited, 10*time.Second); lastErr == nil {
			// Something listens; make sure it is this PgBouncer, not a
			// process that took the port first while this one gave up.
			select {
			case err := <-exited:
				lastErr = fmt.Errorf("exited after port %d answered (taken by another process?): %v", port, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
		if lastErr != nil {
			_ = cmd.Process.Kill()
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		return &PgBouncer{Port: port, dir: dir}
	}
	out, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.out"))
	t.Fatalf("pgtest: pgbouncer did not start: %v\n%s", lastErr, out)
	return nil
}

// bouncerConfig is a pgbouncer.ini for transaction pooling of every database
// of the server. server_reset_query is not run in transaction mode anyway;
// it is set empty to make that visible.
func bouncerConfig(dir string, port int, o BouncerOptions) string {
	return fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 5000
max_db_connections = %d
max_user_connections = %d
server_idle_timeout = %d
server_reset_query =
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile =
`, o.ServerHost, o.ServerPort, port, filepath.Join(dir, "userlist.txt"), o.PoolSize, o.MaxDBConns, o.MaxUserConns,
		int(cmp.Or(o.ServerIdleTimeout, 600*time.Second).Seconds()), filepath.Join(dir, "pgbouncer.log"))
}

// Log returns what PgBouncer has logged so far, for a failing test's
// message.
func (b *PgBouncer) Log() string {
	out, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	return string(out)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
