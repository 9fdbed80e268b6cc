package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"tenancy/models"
)

// readInOneTrip runs query (with args), as tenant t, in one round trip to
// the server instead of four (BEGIN, set the tenant, read, COMMIT):
// the statement that sets app.tenant_id and the read go out together as a
// pipeline (pgx's batch) ending in one Sync. PostgreSQL runs the statements
// of a pipeline up to its Sync as one implicit transaction, so the
// transaction-local setting holds for the read and is gone after it, as in
// Tx.
//
// gorm still writes the read's SQL (see pageStatements), so the tenant
// scope is applied and enforced exactly as in Tx; only the sending differs.
// scan reads the result rows.
func (s *singleSchema) readInOneTrip(ctx context.Context, t models.Account, query string, args []any, scan func(pgx.Rows) error) error {
	err := s.appTurns.do(ctx, func() error {
		// Sent past gorm, so logged here as gorm logs the others: slow
		// ones only, without their values; timed from the turn, so that
		// waiting for one is not logged as a slow query.
		defer func(begin time.Time) {
			s.app.Logger.Trace(ctx, begin, func() (string, int64) { return query, -1 }, nil)
		}(time.Now())
		return withPgxConn(ctx, s.pools[0], func(c *pgx.Conn) error {
			b := &pgx.Batch{}
			b.Queue(setTenantSQL(!s.sessionLevelTenant), strconv.FormatInt(int64(t.ID), 10))
			b.Queue(query, args...)
			results := c.SendBatch(ctx, b)
			if _, err := results.Exec(); err != nil {
				return errors.Join(fmt.Errorf("set tenant: %w", err), results.Close())
			}
			rows, err := results.Query()
			if err == nil {
				err = scan(rows)
				rows.Close()
				err = errors.Join(err, rows.Err())
			}
			return errors.Join(err, results.Close())
		})
	})
	if err != nil {
		return fmt.Errorf("tenant %s: %w", t.Slug, classify(err))
	}
	return nil
}

// withPgxConn runs fn on a connection of pool, as pgx sees it.
func withPgxConn(ctx context.Context, pool *sql.DB, fn func(*pgx.Conn) error) error {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error { return fn(driverConn.(*stdlib.Conn).Conn()) })
}

// scanPagedRows reads list rows in subtaskColumns order, then the total.
// The parents' columns come from LEFT JOINs and may be NULL (see
// joinParents), which reads as "".
func scanPagedRows(rows pgx.Rows, into *[]pagedRow) error {
	for rows.Next() {
		var r pagedRow
		var task, project, slug, account *string
		var total *int64
		if err := rows.Scan(&r.ID, &r.Name, &r.IsComplete, &r.Details, &task, &project, &slug, &account, &total); err != nil {
			return err
		}
		r.TaskName, r.ProjectName, r.AccountSlug, r.AccountName = deref(task), deref(project), deref(slug), deref(account)
		if total != nil {
			r.Total = *total
		}
		*into = append(*into, r)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
