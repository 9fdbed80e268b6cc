// Package citustest starts a Citus cluster of the test's own: a
// coordinator and workers, each a throwaway local PostgreSQL cluster
// (internal/pgtest) on a free loopback port with Citus preloaded, stopped
// and deleted when the test ends. A database on it is made on every node,
// with the citus extension and the nodes registered in it, since Citus
// keeps its node list per database and does not create databases on the
// workers.
//
// Citus is not part of Debian; `make test` installs it (`make citus`).
// Without it the tests that need it are skipped, or fail when CI=true,
// saying why.
package citustest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"tenancy/internal/localcluster"
	"tenancy/internal/pgtest"
)

// settings are every node's: a Citus node's (localcluster.CitusSettings),
// with few shards: each one is a table on a worker, and the tests create a
// deployment per test.
func settings() []string {
	return append(localcluster.CitusSettings(), "citus.shard_count=8")
}

// Cluster is a coordinator and its workers.
type Cluster struct {
	Coordinator *pgtest.Cluster
	mu          sync.Mutex
	workers     []*pgtest.Cluster
	databases   []string // made on every node, in order
}

// Require fails the test (CI=true) or skips it when Citus is not installed
// for the PostgreSQL that throwaway clusters run.
func Require(t testing.TB) {
	t.Helper()
	if err := localcluster.CitusInstalled(); err != nil {
		pgtest.Need(t, fmt.Sprintf("citustest: Citus is not installed (%v); `make citus` installs it from ../shared/citus, or install Citus from its own packages", err))
	}
}

// New starts a coordinator and workers workers.
func New(t testing.TB, workers int) *Cluster {
	t.Helper()
	Require(t)
	c := &Cluster{}
	// Each node's initdb and start are mostly waiting on the disk: start
	// them together.
	nodes := make([]*pgtest.Cluster, workers+1)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i] = newNode(t)
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		if n == nil {
			t.FailNow() // its error is reported already
		}
	}
	c.Coordinator, c.workers = nodes[0], nodes[1:]
	return c
}

// newNode starts one node; nil when it failed (reported on t), since only
// the test's own goroutine may end the test.
func newNode(t testing.TB) *pgtest.Cluster {
	var n *pgtest.Cluster
	failed := true
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("citustest: start a node: %v", r)
			}
		}()
		n = pgtest.NewClusterWith(nodeTB{t}, settings()...)
		failed = false
	}()
	if failed {
		return nil
	}
	return n
}

// nodeTB lets pgtest start a node from another goroutine: its Fatal
// reports and panics, and newNode recovers.
type nodeTB struct{ testing.TB }

func (n nodeTB) Fatal(args ...any) { n.TB.Error(args...); panic(fmt.Sprint(args...)) }
func (n nodeTB) Fatalf(format string, args ...any) {
	n.TB.Errorf(format, args...)
	panic(fmt.Sprintf(format, args...))
}
func (n nodeTB) Skip(args ...any) { n.TB.Error(args...); panic(fmt.Sprint(args...)) }

// Workers are the worker nodes, in the order they were added.
func (c *Cluster) Workers() []*pgtest.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*pgtest.Cluster(nil), c.workers...)
}

// Env returns the coordinator's admin connection variables (PGHOST,
// PGPORT, PGUSER, PGPASSWORD, PGSSLMODE).
func (c *Cluster) Env() map[string]string { return c.Coordinator.Env() }

// DSN is a connection URL to database on node as the postgres superuser.
func DSN(node *pgtest.Cluster, database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", node.Port, database)
}

// CreateDatabase makes database on every node, owned by the postgres
// superuser (the tests' admin), with the citus extension, and registers
// the workers with the coordinator in it. A later setup adopts it. A
// database it made already is left as it is.
func (c *Cluster) CreateDatabase(ctx context.Context, database string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.Contains(c.databases, database) {
		return nil
	}
	// One made by the test itself (to see setup refuse it) is left alone.
	var exists bool
	if err := queryOn(ctx, DSN(c.Coordinator, "postgres"), `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, []any{database}, &exists); err != nil {
		return fmt.Errorf("citustest: look up database %s: %w", database, err)
	}
	if exists {
		return nil
	}
	for _, n := range append([]*pgtest.Cluster{c.Coordinator}, c.workers...) {
		if err := prepareNode(ctx, n, database); err != nil {
			return err
		}
	}
	if err := c.registerNodes(ctx, database, c.workers); err != nil {
		return err
	}
	c.databases = append(c.databases, database)
	return nil
}

// MustCreateDatabase is CreateDatabase, failing the test on an error.
func (c *Cluster) MustCreateDatabase(t testing.TB, database string) {
	t.Helper()
	if err := c.CreateDatabase(context.Background(), database); err != nil {
		t.Fatal(err)
	}
}

// prepareNode creates database on node with the citus extension.
func prepareNode(ctx context.Context, n *pgtest.Cluster, database string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := execOn(ctx, DSN(n, "postgres"), `CREATE DATABASE "`+database+`" TEMPLATE template0`); err != nil {
		return fmt.Errorf("citustest: create database %s on port %d: %w", database, n.Port, err)
	}
	if err := execOn(ctx, DSN(n, database), "CREATE EXTENSION citus"); err != nil {
		return fmt.Errorf("citustest: create extension citus in %s on port %d: %w", database, n.Port, err)
	}
	return nil
}

// registerNodes tells the coordinator's database where it is itself and
// adds workers.
func (c *Cluster) registerNodes(ctx context.Context, database string, workers []*pgtest.Cluster) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	stmts := []string{
		fmt.Sprintf("SELECT citus_set_coordinator_host('127.0.0.1', %d)", c.Coordinator.Port),
		// The tests' own checks, as the admin, join tables on columns
		// other than account_id (tasks to projects by id alone), which
		// Citus runs only as repartition joins. Not for the runtime
		// roles: the server's statements must never need one.
		fmt.Sprintf(`ALTER ROLE postgres IN DATABASE %q SET citus.enable_repartition_joins = on`, database),
	}
	for _, w := range workers {
		stmts = append(stmts, fmt.Sprintf("SELECT citus_add_node('127.0.0.1', %d)", w.Port))
	}
	if err := execOn(ctx, DSN(c.Coordinator, database), stmts...); err != nil {
		return fmt.Errorf("citustest: register the nodes in %s: %w", database, err)
	}
	return nil
}

// AddWorker starts one more worker and adds it to every database made so
// far (and to those made later). It holds no shards until they are
// rebalanced onto it.
func (c *Cluster) AddWorker(t testing.TB) *pgtest.Cluster {
	t.Helper()
	w := pgtest.NewClusterWith(t, settings()...)
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx := context.Background()
	for _, database := range c.databases {
		if err := prepareNode(ctx, w, database); err != nil {
			t.Fatal(err)
		}
		if err := c.registerNodes(ctx, database, []*pgtest.Cluster{w}); err != nil {
			t.Fatal(err)
		}
	}
	c.workers = append(c.workers, w)
	return w
}

func queryOn(ctx context.Context, dsn, query string, args []any, dest ...any) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRowContext(ctx, query, args...).Scan(dest...)
}

func execOn(ctx context.Context, dsn string, stmts ...string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// UseCoordinator points the tests' admin connection variables (PGHOST,
// PGPORT, ...) at the coordinator until t ends, so that the helpers of
// internal/pgtest and strategy/strategytest deploy there. It changes the
// process environment, not t's alone: call it from a test that runs on its
// own (no t.Parallel) in a package whose other tests are either sequential
// or parallel ones, which run only after every sequential test has
// finished. Its subtests may run in parallel.
func (c *Cluster) UseCoordinator(t testing.TB) {
	t.Helper()
	for k, v := range c.Env() {
		old, had := os.LookupEnv(k)
		if err := os.Setenv(k, v); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		})
	}
}
