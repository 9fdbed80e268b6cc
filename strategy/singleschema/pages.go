package singleschema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// The subtask list, from the handler's call to the SQL: ListSubtasks takes
// the statement gorm wrote for this page's shape (internal/pages), sends it
// with the tenant setting in one round trip (readInOneTrip), and checks the
// rows are the tenant's; the all-tenants list is one statement of its own
// (allTenantsPage), read as the all-tenants reader.

func (s *Server) ListSubtasks(ctx context.Context, page, perPage int) (strategy.SubtaskPage, error) {
	var out strategy.SubtaskPage
	var err error
	if models.IsAllTenants(ctx) {
		// No transaction on plain PostgreSQL: the page and its total are
		// one statement. Citus cannot plan that statement (its windows and
		// lateral joins span the shards): there the page is read tenant by
		// tenant, in one read-only transaction.
		err = s.readerTurns.Do(ctx, func() error {
			db := s.reader.WithContext(models.NewContextForAllTenants(ctx))
			if !s.citus.Load() {
				out, err = listAllTenants(db, page, perPage)
				return err
			}
			// Read-only: tried once more after a shard split as the
			// tenant's reads are (tx).
			return pg.OnceMoreAfterSplit(func() error {
				return pg.NotCommitted(db.Transaction(func(tx *gorm.DB) error {
					out, err = listAllTenantsByTenant(tx, page, perPage)
					return err
				}, &sql.TxOptions{ReadOnly: true}))
			})
		})
		if err != nil && !errors.Is(err, strategy.ErrPageNotFound) {
			err = fmt.Errorf("all tenants: %w", pg.Classify(err))
		}
		return out, err
	}
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.SubtaskPage{}, strategy.ErrNoTenant
	}
	if err := pages.Check(page, perPage); err != nil {
		return strategy.SubtaskPage{Page: page}, err
	}
	if err := s.requireCurrent(ctx, t); err != nil {
		return strategy.SubtaskPage{}, err
	}
	query, args, err := s.pages.Statement(ctx, s.app, pages.Query{Denormalised: true}, t, page, perPage)
	if err != nil {
		return strategy.SubtaskPage{}, fmt.Errorf("tenant %s: %w", t.Slug, err)
	}
	rows := make([]pages.Row, 0, perPage)
	err = s.readInOneTrip(ctx, t, query, args, func(r pgx.Rows) error {
		rows = rows[:0] // read again after a shard split (readInOneTrip)
		return pages.Scan(r, &rows)
	})
	for _, r := range rows {
		if r.AccountSlug != t.Slug {
			// The account this slug was resolved to is not the one whose
			// rows these are: the slug moved to another account (or a row
			// of another tenant got through). Serve nothing; the next
			// request resolves the slug afresh.
			s.accounts.Forget(t.Slug)
			return strategy.SubtaskPage{}, fmt.Errorf("%w: tenant %s: the rows read belong to account %q; the address now names another account, try again",
				strategy.ErrUnavailable, t.Slug, r.AccountSlug)
		}
	}
	if err != nil {
		return strategy.SubtaskPage{}, err
	}
	if len(rows) > 0 {
		out = pages.New(page, perPage, rows[0].Total, rows)
	} else {
		// An empty tenant, a page past the last, or a tenant deleted
		// since its account was looked up: only the last is not found.
		if err := s.goneError(ctx, t); err != nil {
			return strategy.SubtaskPage{}, err
		}
		err = s.tx(ctx, pages.Snapshot(), func(tx *gorm.DB) error {
			out, err = pages.Finish(tx, page, perPage, nil)
			return err
		})
	}
	s.pages.NoteTotal(t.Slug, out, err)
	return out, err
}

// readInOneTrip runs query (with args), as tenant t, in one round trip to
// the server instead of four (BEGIN, set the tenant, read, COMMIT):
// the statement that sets app.tenant_id and the read go out together as a
// pipeline (pgx's batch) ending in one Sync. PostgreSQL runs the statements
// of a pipeline up to its Sync as one implicit transaction, so the
// transaction-local setting holds for the read and is gone after it, as in
// Tx. On Citus the pipeline carries its own BEGIN and COMMIT: Citus passes
// the tenant on to the workers only from a transaction block (see
// setTenant), and the read without it would see no rows.
//
// gorm still writes the read's SQL (see pages.Statements), so the tenant
// scope is applied and enforced exactly as in Tx; only the sending differs.
// scan reads the result rows; it is called again, from the first row, when
// the read is tried again.
//
// On Citus a read planned just before a shard split (a tenant isolated to
// a shard of its own) commits finds no entry for the shard it was planned
// on (pg.ShardReplaced): that read is tried once more, planned afresh
// against the new shard (pg.AgainAfterSplit). It was read-only and nothing
// came of it, so the client need not see the split. Only Citus sends that
// error, so plain PostgreSQL never reads twice.
func (s *Server) readInOneTrip(ctx context.Context, t models.Account, query string, args []any, scan func(pgx.Rows) error) error {
	err := pg.OnceMoreAfterSplit(func() error { return s.readInOneTripOnce(ctx, t, query, args, scan) })
	if err != nil {
		return fmt.Errorf("tenant %s: %w", t.Slug, pg.Classify(err))
	}
	return nil
}

// readInOneTripOnce is one try of readInOneTrip.
func (s *Server) readInOneTripOnce(ctx context.Context, t models.Account, query string, args []any, scan func(pgx.Rows) error) error {
	how := s.tenantSetting()
	block := how == citusLocal
	return s.appTurns.Do(ctx, func() error {
		// Sent past gorm, so logged here as gorm logs the others: slow
		// ones only, without their values; timed from the turn, so that
		// waiting for one is not logged as a slow query.
		defer func(begin time.Time) {
			s.app.Logger.Trace(ctx, begin, func() (string, int64) { return query, -1 }, nil)
		}(time.Now())
		return s.onTenantsNode(ctx, t, block, func(pool *sql.DB) error {
			return readPipeline(ctx, pool, how, t, block, query, args, scan)
		})
	})
}

// onTenantsNode runs read on the pool of t's Citus worker when reads go
// there (workerReads), else on the app pool.
func (s *Server) onTenantsNode(ctx context.Context, t models.Account, citus bool, read func(*sql.DB) error) error {
	if !citus || s.workers == nil {
		return read(s.pools[0])
	}
	return s.workers.read(ctx, s.pools[0], t, read)
}

// readPipeline sends readInOneTrip's pipeline on a connection of pool.
func readPipeline(ctx context.Context, pool *sql.DB, how tenantSetting, t models.Account, block bool, query string, args []any, scan func(pgx.Rows) error) error {
	return pg.WithPgxConn(ctx, pool, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		if block {
			b.Queue("BEGIN")
		}
		b.Queue(how.sql(), how.arg(int64(t.ID)))
		b.Queue(query, args...)
		if block {
			b.Queue("COMMIT")
		}
		err := readBatch(c.SendBatch(ctx, b), block, scan)
		if block && c.PgConn().TxStatus() != 'I' && !c.IsClosed() {
			// A failed statement skips the rest of the pipeline, its
			// COMMIT included, and leaves the block open (aborted).
			_, rollbackErr := c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			err = errors.Join(err, rollbackErr)
		}
		return err
	})
}

// readBatch reads the results of readInOneTrip's pipeline: [BEGIN], the
// tenant setting, the read, [COMMIT]. A failure before the COMMIT is
// marked pg.NotCommitted: the server skips the rest of the pipeline.
func readBatch(results pgx.BatchResults, block bool, scan func(pgx.Rows) error) error {
	if block {
		if _, err := results.Exec(); err != nil {
			return pg.NotCommitted(errors.Join(fmt.Errorf("begin: %w", err), results.Close()))
		}
	}
	if _, err := results.Exec(); err != nil {
		return pg.NotCommitted(errors.Join(fmt.Errorf("set tenant: %w", err), results.Close()))
	}
	rows, err := results.Query()
	if err == nil {
		err = scan(rows)
		rows.Close()
		err = errors.Join(err, rows.Err())
	}
	if err != nil {
		return pg.NotCommitted(errors.Join(err, results.Close()))
	}
	if block {
		if _, err = results.Exec(); err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
	}
	return errors.Join(err, results.Close())
}

// allTenantsPage is the all-tenants list (singleschema, as the reader
// role): tenant by tenant in account id order, then by name and id. That
// order lets any page be found without walking the rows before it, which a
// global order by name could not (its last page at a million subtasks is a
// walk over a million index entries):
//
//  1. the per-tenant counts, summed in account order, say which tenant the
//     page starts in and how far into it; past the middle of the list they
//     are summed from the last account back, so that no page sums more
//     than half the tenants;
//  2. an OFFSET within that one tenant, on the (account_id, name, id)
//     index, finds the first row's key, again from the tenant's far end
//     when that is nearer;
//  3. the page is the next rows from that key on the same index, across
//     tenants if it has to, joined to their parents by key.
//
// Each choice of direction is two UNION ALL branches gated on the totals,
// which the planner makes one-time filters: only one branch runs.
//
// One statement: one round trip and one snapshot, so total and rows agree.
// The page's rows are read in the lateral scan itself and their parents
// joined by key: with the row limit a bind parameter, the server's generic
// plan (see grants) guessed a large page and hash-joined it against every
// subtask (240 ms at 900k subtasks). The limit is the handlers' page size,
// written into the statement (see listAllTenants), never user input. The
// account is a lateral lookup for the same reason: as a join, the plan read
// every account into a hash table. The offset is cast to bigint wherever it
// appears: "@offset * 2" alone makes it an int4, and a large page number an
// error instead of a 404.
const allTenantsPage = `
WITH total AS (
    SELECT coalesce(sum(subtasks), 0) AS n FROM subtask_counts
), start AS (
    (SELECT account_id, CAST(@offset AS bigint) - (upto - subtasks) AS skip, subtasks FROM (
        SELECT account_id, subtasks, sum(subtasks) OVER (ORDER BY account_id) AS upto
        FROM subtask_counts WHERE subtasks > 0) c
     WHERE upto > CAST(@offset AS bigint) AND CAST(@offset AS bigint) * 2 < (SELECT n FROM total)
     ORDER BY account_id LIMIT 1)
    UNION ALL
    (SELECT account_id, from_end - ((SELECT n FROM total) - CAST(@offset AS bigint)) AS skip, subtasks FROM (
        SELECT account_id, subtasks, sum(subtasks) OVER (ORDER BY account_id DESC) AS from_end
        FROM subtask_counts WHERE subtasks > 0) c
     WHERE from_end >= (SELECT n FROM total) - CAST(@offset AS bigint)
       AND CAST(@offset AS bigint) * 2 >= (SELECT n FROM total) AND CAST(@offset AS bigint) < (SELECT n FROM total)
     ORDER BY account_id DESC LIMIT 1)
), first AS (
    SELECT f.account_id, f.name, f.id FROM start CROSS JOIN LATERAL (
        (SELECT account_id, name, id FROM subtasks
         WHERE subtasks.account_id = start.account_id AND start.skip * 2 < start.subtasks
         ORDER BY name, id OFFSET start.skip LIMIT 1)
        UNION ALL
        (SELECT account_id, name, id FROM subtasks
         WHERE subtasks.account_id = start.account_id AND start.skip * 2 >= start.subtasks
         ORDER BY name DESC, id DESC OFFSET start.subtasks - start.skip - 1 LIMIT 1)) f
), page AS (
    SELECT p.* FROM first CROSS JOIN LATERAL (
        SELECT id, account_id, task_id, name, is_complete, details FROM subtasks
        WHERE (subtasks.account_id, subtasks.name, subtasks.id) >= (first.account_id, first.name, first.id)
        ORDER BY account_id, name, id LIMIT %d) p
)
SELECT page.id, page.name, page.is_complete, page.details, tasks.name AS task_name, projects.name AS project_name,
       accounts.slug AS account_slug, accounts.name AS account_name,
       (SELECT n FROM total) AS total
FROM page
LEFT JOIN tasks ON tasks.account_id = page.account_id AND tasks.id = page.task_id
LEFT JOIN projects ON projects.account_id = tasks.account_id AND projects.id = tasks.project_id
LEFT JOIN LATERAL (SELECT slug, name FROM accounts WHERE accounts.id = page.account_id LIMIT 1) accounts ON true
ORDER BY page.account_id, page.name, page.id`

// tenantPageOfAll is one tenant's part of an all-tenants page on Citus:
// the tenant's rows from an offset, joined to their parents by key, which
// Citus sends whole to the worker that has the tenant. The limit is the
// handlers' page size (a bind parameter here: each execution is planned
// for its values on Citus, see pg.CitusRoleSettings).
const tenantPageOfAll = `
SELECT subtasks.id, subtasks.name, subtasks.is_complete, subtasks.details,
       tasks.name AS task_name, projects.name AS project_name,
       accounts.slug AS account_slug, accounts.name AS account_name
FROM subtasks
LEFT JOIN tasks ON tasks.account_id = subtasks.account_id AND tasks.id = subtasks.task_id
LEFT JOIN projects ON projects.account_id = tasks.account_id AND projects.id = tasks.project_id
LEFT JOIN accounts ON accounts.id = subtasks.account_id
WHERE subtasks.account_id = @account
ORDER BY subtasks.name, subtasks.id
OFFSET @skip LIMIT @limit`

// listAllTenantsByTenant reads one page of the all-tenants list, in the
// same order as allTenantsPage, as Citus can plan it: the tenants'
// counts (one row a tenant, from every worker) say which tenant the page
// starts in and how far into it; then each tenant's part is one statement
// on its worker (tenantPageOfAll), the next tenant's when the page runs
// past the end of one. tx must carry the explicit all-tenants scope.
func listAllTenantsByTenant(tx *gorm.DB, page, perPage int) (strategy.SubtaskPage, error) {
	if err := pages.Check(page, perPage); err != nil {
		return strategy.SubtaskPage{Page: page}, err
	}
	// Scanned by hand: a row a tenant, and gorm's scan of thousands of
	// rows into models cost more than the read.
	var counts []models.SubtaskCount
	err := func() error {
		rows, err := tx.Raw("SELECT account_id, subtasks FROM subtask_counts WHERE subtasks > 0 ORDER BY account_id").Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c models.SubtaskCount
			if err := rows.Scan(&c.AccountID, &c.Subtasks); err != nil {
				return err
			}
			counts = append(counts, c)
		}
		return rows.Err()
	}()
	if err != nil {
		return strategy.SubtaskPage{}, fmt.Errorf("read the tenants' counts for all-tenants page %d: %w", page, err)
	}
	var total int64
	for _, c := range counts {
		total += c.Subtasks
	}
	skip := int64(page-1) * int64(perPage)
	rows := make([]pages.Row, 0, perPage)
	for _, c := range counts {
		if len(rows) == perPage {
			break
		}
		if skip >= c.Subtasks {
			skip -= c.Subtasks
			continue
		}
		var part []pages.Row
		err = tx.Raw(tenantPageOfAll, sql.Named("account", c.AccountID), sql.Named("skip", skip),
			sql.Named("limit", perPage-len(rows))).Scan(&part).Error
		if err != nil {
			return strategy.SubtaskPage{}, fmt.Errorf("read all-tenants page %d: account %d: %w", page, c.AccountID, err)
		}
		rows = append(rows, part...)
		skip = 0
	}
	out := pages.New(page, perPage, total, rows)
	if len(rows) == 0 && page > out.Pages {
		return out, strategy.ErrPageNotFound
	}
	return out, nil
}

// listAllTenants reads one page of the all-tenants list on tx, which must
// carry the explicit all-tenants scope.
func listAllTenants(tx *gorm.DB, page, perPage int) (strategy.SubtaskPage, error) {
	if err := pages.Check(page, perPage); err != nil {
		return strategy.SubtaskPage{Page: page}, err
	}
	rows := make([]pages.Row, 0, perPage)
	query := fmt.Sprintf(allTenantsPage, perPage) // an int: nothing to escape
	err := tx.Raw(query, sql.Named("offset", int64(page-1)*int64(perPage))).Scan(&rows).Error
	if err != nil {
		return strategy.SubtaskPage{}, fmt.Errorf("read all-tenants page %d: %w", page, err)
	}
	return pages.Finish(tx, page, perPage, rows)
}
