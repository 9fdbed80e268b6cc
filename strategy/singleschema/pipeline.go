package singleschema

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"tenancy/models"
	"tenancy/strategy/internal/pg"
)

// readInOneTrip runs query (with args), as tenant t, in one round trip to
// the server instead of four (BEGIN, set the tenant, read, COMMIT):
// the statement that sets app.tenant_id and the read go out together as a
// pipeline (pgx's batch) ending in one Sync. PostgreSQL runs the statements
// of a pipeline up to its Sync as one implicit transaction, so the
// transaction-local setting holds for the read and is gone after it, as in
// Tx.
//
// gorm still writes the read's SQL (see pages.Statements), so the tenant
// scope is applied and enforced exactly as in Tx; only the sending differs.
// scan reads the result rows.
func (s *Server) readInOneTrip(ctx context.Context, t models.Account, query string, args []any, scan func(pgx.Rows) error) error {
	err := s.appTurns.Do(ctx, func() error {
		// Sent past gorm, so logged here as gorm logs the others: slow
		// ones only, without their values; timed from the turn, so that
		// waiting for one is not logged as a slow query.
		defer func(begin time.Time) {
			s.app.Logger.Trace(ctx, begin, func() (string, int64) { return query, -1 }, nil)
		}(time.Now())
		return pg.WithPgxConn(ctx, s.pools[0], func(c *pgx.Conn) error {
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
		return fmt.Errorf("tenant %s: %w", t.Slug, pg.Classify(err))
	}
	return nil
}
