package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Cluster is a throwaway PostgreSQL cluster of the test's own, on a free
// loopback port, with trust authentication for the postgres role. Tests
// that stop or restart PostgreSQL use one, never the shared server that
// other tests (and people) use. It is stopped and deleted when the test
// ends.
type Cluster struct {
	Port     int
	bin      string
	dir      string
	su       serviceUser
	settings []string // name=value, each passed as -c at every start
}

// NewCluster runs initdb into a temporary directory and starts the
// cluster. The test fails (CI=true) or is skipped when PostgreSQL's server
// programs are not installed.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	return NewClusterWith(t)
}

// NewClusterWith is NewCluster with server settings of the test's own,
// each "name=value" (shared_preload_libraries=citus, say), given on the
// command line at every start so that they also hold after Stop and Start.
func NewClusterWith(t testing.TB, settings ...string) *Cluster {
	t.Helper()
	bin, err := ServerBinDir()
	if err != nil {
		Need(t, fmt.Sprintf("pgtest: %v; install Debian's postgresql package (`make db` does)", err))
	}
	su := lookupServiceUser(t)
	c := &Cluster{bin: bin, dir: su.privateDir(t, "tenancy-cluster-"), su: su, settings: settings}
	// --no-sync and fsync=off: the data is thrown away, and speed matters.
	if out, err := su.command(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb %s: %v\n%s", c.data(), err, out)
	}
	t.Cleanup(func() {
		// Immediate: nothing in it is worth a checkpoint. Errors are fine
		// when a test left it stopped.
		_ = su.command(filepath.Join(bin, "pg_ctl"), "-D", c.data(), "-m", "immediate", "-w", "stop").Run()
	})
	var lastErr error
	for range 3 { // the free port can be taken before the server listens
		c.Port = FreePort(t)
		if lastErr = c.start(); lastErr == nil {
			return c
		}
	}
	t.Fatalf("pgtest: %v", lastErr)
	return nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) start() error {
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c shared_buffers=32MB",
		c.Port, c.dir)
	for _, setting := range c.settings {
		opts += " -c " + setting
	}
	out, err := c.su.command(filepath.Join(c.bin, "pg_ctl"), "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"),
		"-o", opts, "-w", "-t", "60", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		return fmt.Errorf("start cluster on port %d: %v\n%s\n%s", c.Port, err, out, log)
	}
	return nil
}

// Start starts the stopped cluster again on the same port.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Stop stops the cluster in fast mode: open transactions are rolled back
// and every connection is closed, as a restart by an operator does.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if out, err := c.su.command(filepath.Join(c.bin, "pg_ctl"), "-D", c.data(), "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: stop cluster on port %d: %v\n%s", c.Port, err, out)
	}
}

// Env returns the admin connection variables of the cluster (PGHOST,
// PGPORT, PGUSER, PGSSLMODE), for pgtest-style environments.
func (c *Cluster) Env() map[string]string {
	return map[string]string{"PGHOST": "127.0.0.1", "PGPORT": strconv.Itoa(c.Port), "PGUSER": "postgres", "PGPASSWORD": "", "PGSSLMODE": "disable"}
}
