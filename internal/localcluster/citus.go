package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// CitusSettings returns the settings every node of a Citus is started
// with: Citus loaded; prepared transactions for its two-phase commits
// across nodes; logical decoding for moving shards while they are
// written; plain connections between the nodes, which talk over loopback
// and have no certificates (Citus asks for TLS by default, which is right
// across machines). The shard count is Citus's default, as a deployment
// would have it.
func CitusSettings() []string {
	return []string{
		"shared_preload_libraries=citus",
		"max_prepared_transactions=100",
		"wal_level=logical",
		"citus.node_conninfo=sslmode=disable",
	}
}

// CitusInstalled says why Citus cannot be had for the PostgreSQL that
// ServerBinDir runs, or nil when its extension is installed.
func CitusInstalled() error {
	bin, err := ServerBinDir()
	if err != nil {
		return err
	}
	out, err := exec.Command(filepath.Join(bin, "pg_config"), "--sharedir").Output()
	if err != nil {
		return fmt.Errorf("%s --sharedir: %v", filepath.Join(bin, "pg_config"), err)
	}
	control := filepath.Join(strings.TrimSpace(string(out)), "extension", "citus.control")
	if _, err := os.Stat(control); err != nil {
		return fmt.Errorf("Citus is not installed for the PostgreSQL in %s (no %s)", bin, control)
	}
	return nil
}

// Citus is a coordinator and its workers, each a Node.
type Citus struct {
	Coordinator *Node
	Workers     []*Node
}

// Nodes are the coordinator, then the workers.
func (c *Citus) Nodes() []*Node { return append([]*Node{c.Coordinator}, c.Workers...) }

// StartCitus starts a coordinator and workers workers, all at once (each
// initdb and start mostly waits on the disk). On an error, the nodes that
// started are stopped again.
func StartCitus(ctx context.Context, workers int) (*Citus, error) {
	if err := CitusInstalled(); err != nil {
		return nil, err
	}
	nodes := make([]*Node, workers+1)
	errs := make([]error, workers+1)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = Start(ctx, CitusSettings()...)
		}()
	}
	wg.Wait()
	c := &Citus{Coordinator: nodes[0], Workers: nodes[1:]}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(fmt.Errorf("start a Citus node: %w", err), c.Stop())
	}
	return c, nil
}

// Stop stops every node and removes their directories. It may be called
// more than once, and on a Citus that started only in part.
func (c *Citus) Stop() error {
	var errs []error
	for _, n := range c.Nodes() {
		if n != nil {
			errs = append(errs, n.Stop())
		}
	}
	return errors.Join(errs...)
}

// CreateDatabase makes database on every node, owned by the postgres
// superuser, with the citus extension, and registers the coordinator and
// the workers in it on the coordinator: Citus keeps its node list per
// database and creates no database on the workers.
func (c *Citus) CreateDatabase(ctx context.Context, database string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ident := pgx.Identifier{database}.Sanitize()
	for _, n := range c.Nodes() {
		if err := execOn(ctx, n.DSN("postgres"), "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
			return fmt.Errorf("create database %s on port %d: %w", database, n.Port, err)
		}
		if err := execOn(ctx, n.DSN(database), "CREATE EXTENSION citus"); err != nil {
			return fmt.Errorf("create extension citus in %s on port %d: %w", database, n.Port, err)
		}
	}
	stmts := []string{fmt.Sprintf("SELECT citus_set_coordinator_host('127.0.0.1', %d)", c.Coordinator.Port)}
	for _, w := range c.Workers {
		stmts = append(stmts, fmt.Sprintf("SELECT citus_add_node('127.0.0.1', %d)", w.Port))
	}
	if err := execOn(ctx, c.Coordinator.DSN(database), stmts...); err != nil {
		return fmt.Errorf("register the Citus nodes in %s: %w", database, err)
	}
	return nil
}

// Version is the coordinator's Citus and PostgreSQL versions, as
// citus_version() gives them.
func (c *Citus) Version(ctx context.Context, database string) (string, error) {
	conn, err := pgx.Connect(ctx, c.Coordinator.DSN(database))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v string
	if err := conn.QueryRow(ctx, "SELECT citus_version()").Scan(&v); err != nil {
		return "", fmt.Errorf("citus_version(): %w", err)
	}
	return v, nil
}

func execOn(ctx context.Context, dsn string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}
