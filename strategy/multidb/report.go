package multidb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multidb/directory"
)

// The cross-tenant report visits every tenant database: there is no one
// place that sees them all. It fans out over them, a few at a time, each
// through the tenant pools (withTenantDB: acquire, the audit on first use,
// release), so it holds no connection the pools do not count and cannot
// take more than its share of the connection budget; and it is bounded in
// time as a whole. A tenant database that is missing, refuses
// connections, fails its audit, or does not answer in time is listed as
// unreachable, with the reason, and the others are reported.

// openSubtasksSQL is one tenant database's line of the report: its one
// account, its open subtasks and the projects that have any. The
// aggregate has no GROUP BY, so it is one row even with no subtask.
const openSubtasksSQL = `SELECT a.slug, a.name, o.open_subtasks, o.projects
FROM accounts a CROSS JOIN (
    SELECT count(*) AS open_subtasks, count(DISTINCT t.project_id) AS projects
    FROM subtasks s JOIN tasks t ON t.id = s.task_id
    WHERE NOT s.is_complete) o`

// statementTimeoutSQL bounds the read on the server too, in the same
// implicit transaction (transaction-local, so it ends with it): a read
// stuck behind a lock is cancelled by PostgreSQL, which keeps the
// connection usable, instead of waiting there after the client has given
// up on it.
const statementTimeoutSQL = "SELECT set_config('statement_timeout', $1, true)"

// ReportOpenSubtasks is the cross-tenant report (see above). Concurrency
// is o.Concurrency, or half the connection budget, so that tenants' own
// requests keep the other half while a report runs; never more than the
// budget, which acquire enforces anyway.
func (m *Server) ReportOpenSubtasks(ctx context.Context, o strategy.ReportOptions) (strategy.OpenSubtasksReport, error) {
	if !models.IsAllTenants(ctx) {
		return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report: %w", strategy.ErrNotAllTenants)
	}
	start := time.Now()
	budget := o.TimeoutOrDefault()
	work, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	workers := o.Concurrency
	if workers <= 0 {
		workers = max(1, m.opts.Budget()/2)
	}
	entries, err := directory.List(work, m.base)
	if err != nil {
		return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report: %w", err)
	}
	workers = min(workers, m.opts.Budget(), max(1, len(entries)))

	type result struct {
		row strategy.TenantOpenSubtasks
		err error
	}
	results := make([]result, len(entries))
	next := make(chan int, len(entries))
	for i := range entries {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := work.Err(); err != nil {
					results[i].err = fmt.Errorf("not reached: %w", err)
					continue
				}
				results[i].row, results[i].err = m.reportTenant(work, entries[i])
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil { // the caller gave up, not the budget
		return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report: %w", pg.Classify(err))
	}

	out := strategy.OpenSubtasksReport{Strategy: strategy.MultiDB}
	for i, r := range results {
		if r.err == nil {
			out.Rows = append(out.Rows, r.row)
			continue
		}
		slug := entries[i].Slug
		out.Unreachable = append(out.Unreachable, strategy.UnreachableTenant{
			Slug: slug, Reason: unreachableReason(r.err, budget), Err: fmt.Errorf("tenant %s: %w", slug, r.err),
		})
	}
	strategy.SortOpenSubtasks(out.Rows)
	strategy.SortUnreachable(out.Unreachable)
	out.Elapsed = time.Since(start)
	return out, nil
}

// reportTenant reads e's line of the report from its database.
func (m *Server) reportTenant(ctx context.Context, e directory.Entry) (strategy.TenantOpenSubtasks, error) {
	slug := e.Slug
	var row strategy.TenantOpenSubtasks
	found := false
	err := m.withEntryDB(ctx, e, func(db *gorm.DB) error {
		pool := db.Statement.ConnPool.(*sql.DB)
		var err error
		for range maxReportAttempts {
			found, err = readReportLine(ctx, pool, &row)
			if !connectionLost(err) {
				break
			}
		}
		return err
	})
	switch {
	case err != nil:
		return row, err
	case !found:
		return row, fmt.Errorf("%w: %q has a database but no account yet (run `tenancy seed`)", strategy.ErrTenantNotFound, slug)
	case row.Slug != slug:
		return row, fmt.Errorf("%w: its database holds account %q", errWrongAccount, row.Slug)
	}
	return row, nil
}

// maxReportAttempts bounds the reads of one tenant's line on connections
// that turn out to be dead: the pool's idle connections to a database
// that was dropped, closed to connections or restarted since they were
// made fail on first use (PostgreSQL ended them), and the next attempt
// connects afresh and finds out why.
const maxReportAttempts = 3

// connectionLost reports whether err is a connection that PostgreSQL had
// ended before it was used, or one lost before the read was sent: worth
// another connection, as the read changes nothing.
func connectionLost(err error) bool {
	return err != nil && (pg.IsPgError(err, "57P01") || pg.IsPgError(err, "57P02") ||
		errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err))
}

// readReportLine reads a tenant database's line of the report on a
// connection of pool, as one pipeline: the statement timeout and the read
// (found is false when the database holds no account).
func readReportLine(ctx context.Context, pool *sql.DB, row *strategy.TenantOpenSubtasks) (found bool, err error) {
	err = pg.WithPgxConn(ctx, pool, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(statementTimeoutSQL, serverTimeout(ctx))
		b.Queue(openSubtasksSQL)
		results := c.SendBatch(ctx, b)
		if _, err := results.Exec(); err != nil {
			return errors.Join(fmt.Errorf("set the statement timeout: %w", err), results.Close())
		}
		err := results.QueryRow().Scan(&row.Slug, &row.Name, &row.OpenSubtasks, &row.ProjectsWithOpenSubtasks)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		} else if err == nil {
			found = true
		}
		return errors.Join(err, results.Close())
	})
	return found, err
}

// errWrongAccount: a tenant database holds another tenant's account.
var errWrongAccount = errors.New("wrong account")

// serverTimeout is the statement_timeout, in milliseconds, that ends a
// read on the server a little before ctx's deadline, so that PostgreSQL
// cancels it (and the connection stays usable) before the client gives up
// on the connection.
func serverTimeout(ctx context.Context) string {
	deadline, ok := ctx.Deadline()
	if !ok {
		return "0" // no limit
	}
	left := time.Until(deadline)
	left -= min(left/10, 250*time.Millisecond)
	return strconv.FormatInt(max(1, left.Milliseconds()), 10)
}

// unreachableReason says, in words safe to show a user, why a tenant
// could not be read, and what to do.
func unreachableReason(err error, budget time.Duration) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), pg.IsPgError(err, "57014"): // query_canceled: the statement timeout
		return fmt.Sprintf("not read within the report's time budget (%s): its database is slow or locked, or too many tenants came first; try again, or give the report more time", budget)
	case pg.IsPgError(err, "55P03"): // lock_timeout, set on the app role
		return "its tables are locked (a migration or maintenance holds them); try again once that is over"
	case pg.IsPgError(err, "3D000"):
		return "its database is missing (run `tenancy setup`)"
	case pg.IsPgError(err, "55000"):
		return "its database does not accept connections (ALLOW_CONNECTIONS is false, e.g. during a restore); `tenancy check` says more"
	case errors.Is(err, strategy.ErrTenantNotFound):
		return "its database has no account yet (run `tenancy seed`)"
	case errors.Is(err, errWrongAccount):
		return "its database holds another tenant's account; `tenancy check` says more"
	case errors.Is(err, strategy.ErrUnsafeDeployment):
		return "its database failed the server's audit, so it is not served; `tenancy check` lists what to fix"
	case pg.IsPgError(err, "42501"):
		return "the app role lacks a privilege in its database (`tenancy check` lists it; `tenancy migrate` grants it)"
	case errors.Is(err, strategy.ErrUnavailable):
		return "its database could not be reached (no connection came free, or the server did not answer); try again"
	}
	return "its database could not be read; the server's log has the error"
}
