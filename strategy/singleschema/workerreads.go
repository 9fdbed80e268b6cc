package singleschema

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/internal/tenantcache"

	"github.com/jackc/pgx/v5/pgconn"
)

// workerReads sends a tenant's page reads on Citus to the worker that
// holds the tenant's shards instead of to the coordinator. Citus plans a
// distributed query on any node that has its metadata; on the tenant's
// own worker the shard reads run in the backend itself (local execution),
// with no hop to another node and no second planning there. On this
// machine that read the page 3 to 4 times as fast as through the
// coordinator (scripts/page-cost.sh). Everything else (writes, the
// all-tenants view, looking tenants up) still goes through the
// coordinator.
//
// A route is a hint, never what keeps tenants apart: the worker's tables,
// role and policies are Citus's copies of the coordinator's, the tenant is
// set the same way (app_set_tenant in the read's block), and every worker
// pool's role is checked as the coordinator's is (audit.RuntimeRole)
// before it serves a read. After a shard move a read sent to the old
// worker is planned there and reaches the tenant's rows through Citus, as
// from the coordinator, until the route is looked up again (routeTTL). A
// worker the server cannot use (not reachable, the login refused, removed)
// is left alone for nodeRetry and its tenants read through the
// coordinator.
type workerReads struct {
	opts     strategy.Options
	budget   int
	sessions *pg.Sessions
	// routes maps a tenant's slug to the Citus group (node) holding its
	// shards.
	routes *tenantcache.Cache[int32]

	// counts are the worker pools' connections, all added up.
	counts pg.ConnCounts

	mu    sync.Mutex
	nodes map[int32]*workerNode
	// retired are the waits of pools closed since, so that the totals
	// PoolStats reports never go down.
	retired sql.DBStats
}

// workerNode is one worker's pool, opened when a read is first routed to
// it.
type workerNode struct {
	addr    string
	pool    *sql.DB // nil until opened, and after it failed
	opening bool
	retry   time.Time // a node that failed is not tried again before
}

const (
	// routeTTL bounds how long reads follow a tenant to the worker its
	// shards have left (still correct, one hop slower).
	routeTTL = 30 * time.Second
	// nodeRetry is how long a worker that could not be used is left alone.
	nodeRetry = time.Minute
	// nodeOpenTimeout bounds connecting to a worker and checking its role:
	// a worker behind a firewall that drops packets must not hold reads.
	nodeOpenTimeout = 5 * time.Second
)

func newWorkerReads(opts strategy.Options, budget int, sessions *pg.Sessions) *workerReads {
	return &workerReads{
		opts:     opts,
		budget:   budget,
		sessions: sessions,
		routes:   tenantcache.New[int32](routeTTL, tenantcache.MaxEntries),
		nodes:    map[int32]*workerNode{},
	}
}

// read runs read on the pool of t's worker, or on coordinator when t has
// no usable worker. A worker that fails to serve it (connecting, logging
// in, or the connection lost) is set aside and the read is run on the
// coordinator instead: it is read-only, so a second try changes nothing.
func (w *workerReads) read(ctx context.Context, coordinator *sql.DB, t models.Account, read func(*sql.DB) error) error {
	n, pool := w.nodeFor(ctx, coordinator, t)
	if pool == nil {
		return read(coordinator)
	}
	err := read(pool)
	if err == nil || ctx.Err() != nil {
		return err
	}
	// A pool another read set aside meanwhile was closed under this one.
	if w.setAside(n, pool, err, nodeUnusable(err)) {
		return read(coordinator)
	}
	return err
}

// nodeFor is the worker holding t's shards and its open pool, or a nil
// pool: the coordinator is its worker (shards on the coordinator), the
// route is not known, or the worker cannot be used now.
func (w *workerReads) nodeFor(ctx context.Context, coordinator *sql.DB, t models.Account) (*workerNode, *sql.DB) {
	group, err := w.routes.Get(ctx, t.Slug, func(ctx context.Context, _ string) (int32, error) {
		return shardGroup(ctx, coordinator, int64(t.ID))
	})
	if err != nil || group == 0 {
		// Not knowing where a tenant is only costs the hop.
		return nil, nil
	}
	w.mu.Lock()
	n := w.nodes[group]
	if n == nil {
		n = &workerNode{}
		w.nodes[group] = n
	}
	switch {
	case n.pool != nil:
		pool := n.pool
		w.mu.Unlock()
		return n, pool
	case n.opening || time.Now().Before(n.retry):
		w.mu.Unlock()
		return nil, nil
	}
	n.opening = true
	w.mu.Unlock()

	// Opened outside the lock, by this request alone; the others read
	// through the coordinator meanwhile.
	openCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), nodeOpenTimeout)
	defer cancel()
	addr, pool, err := w.open(openCtx, coordinator, group)
	w.mu.Lock()
	defer w.mu.Unlock()
	n.opening, n.addr = false, addr
	if err != nil {
		n.retry = time.Now().Add(nodeRetry)
		w.opts.Log().Warn("Citus worker not used for reads; its tenants read through the coordinator",
			"group", group, "worker", addr, "retry_in", nodeRetry, "err", err)
		return nil, nil
	}
	n.pool = pool
	return n, pool
}

// open connects to the worker of group as the app role and checks the
// role as Open checks it on the coordinator.
func (w *workerReads) open(ctx context.Context, coordinator *sql.DB, group int32) (string, *sql.DB, error) {
	var host string
	var port int
	err := coordinator.QueryRowContext(ctx, `
		SELECT nodename, nodeport FROM pg_catalog.pg_dist_node
		WHERE groupid = $1 AND noderole = 'primary' AND isactive AND hasmetadata AND metadatasynced`, group).Scan(&host, &port)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("no active primary with Citus's metadata in group %d", group)
	}
	if err != nil {
		return "", nil, fmt.Errorf("find the worker of group %d: %w", group, err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	o := w.opts
	o.Host, o.Port = host, port
	pool, err := pg.OpenCountedPoolWith(o.AppDSN(o.Database), w.budget, w.budget, &w.counts, w.sessions)
	if err != nil {
		return addr, nil, err
	}
	if err := audit.RuntimeRole(ctx, pool); err != nil {
		pool.Close()
		return addr, nil, fmt.Errorf("worker %s: %w", addr, err)
	}
	return addr, pool, nil
}

// setAside closes pool, n's, after it failed a read (unusable), and
// reads go to the coordinator until nodeRetry has passed. It reports
// whether pool is set aside now, by this call or an earlier one; a pool
// not unusable and still n's is left as it is.
func (w *workerReads) setAside(n *workerNode, pool *sql.DB, err error, unusable bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n.pool != pool {
		return true
	}
	if !unusable {
		return false
	}
	w.retire(pool)
	n.pool, n.retry = nil, time.Now().Add(nodeRetry)
	w.opts.Log().Warn("Citus worker failed a read; its tenants read through the coordinator",
		"worker", n.addr, "retry_in", nodeRetry, "err", err)
	return true
}

// retire closes pool and keeps its waits for stats. w.mu is held.
func (w *workerReads) retire(pool *sql.DB) error {
	st := pool.Stats()
	w.retired.WaitCount += st.WaitCount
	w.retired.WaitDuration += st.WaitDuration
	return pool.Close()
}

// stats are the worker pools' added up, as one pool named "workers".
func (w *workerReads) stats() strategy.PoolStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := strategy.PoolStats{
		Pool:      "workers",
		WaitCount: w.retired.WaitCount, WaitDuration: w.retired.WaitDuration,
		Opened: w.counts.Opened(), Closed: w.counts.Closed(),
	}
	for _, n := range w.nodes {
		if n.pool == nil {
			continue
		}
		st := n.pool.Stats()
		out.Open += st.OpenConnections
		out.Idle += st.Idle
		out.InUse += st.InUse
		out.WaitCount += st.WaitCount
		out.WaitDuration += st.WaitDuration
	}
	return out
}

func (w *workerReads) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, n := range w.nodes {
		if n.pool != nil {
			errs = append(errs, w.retire(n.pool))
			n.pool = nil
		}
	}
	return errors.Join(errs...)
}

// shardGroup is the Citus group (node) that holds tenant's shards.
func shardGroup(ctx context.Context, coordinator *sql.DB, tenant int64) (int32, error) {
	var group int32
	err := coordinator.QueryRowContext(ctx, `
		SELECT p.groupid FROM pg_catalog.pg_dist_placement p
		WHERE p.shardid = pg_catalog.get_shard_id_for_distribution_column('public.subtasks', $1::bigint)`, tenant).Scan(&group)
	return group, err
}

// nodeUnusable reports whether err says the worker itself could not serve
// (no connection, the login refused, the server going away), rather than
// anything about the read.
func nodeUnusable(err error) bool {
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Shutting down, crashed, starting up; no such database there;
		// the connection broken.
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" ||
			pgErr.Code == "3D000" || strings.HasPrefix(pgErr.Code, "08")
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn)
}
