package singleschema

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// bulkBatchRows is how many rows BulkLoad gathers before it copies them:
// enough that a COPY's fixed cost is negligible, few enough that memory
// stays small.
const bulkBatchRows = 50_000

// tenantTables in foreign-key order.
var tenantTables = []string{"accounts", "users", "projects", "tasks", "subtasks"}

// CanBulkLoad reports whether BulkLoad can run: every tenant table empty,
// and not distributed by Citus, which refuses to drop and remake keys in a
// transaction that has already written to the shards (seed then loads
// tenant by tenant).
func (a *Admin) CanBulkLoad(ctx context.Context) (bool, error) {
	pool, _, err := a.conn()
	if err != nil {
		return false, err
	}
	if distributed, err := pg.IsDistributed(ctx, pool, "public.subtasks"); err != nil || distributed {
		return false, err
	}
	var empty bool
	if err := pool.QueryRowContext(ctx, emptyTables).Scan(&empty); err != nil {
		return false, fmt.Errorf("look for existing rows: %w", pg.Classify(err))
	}
	return empty, nil
}

// emptyTables selects a column in each EXISTS: Citus refuses a
// distributed table's sub-query with none.
const emptyTables = `SELECT NOT (EXISTS (SELECT 1 FROM accounts) OR EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM projects)
	OR EXISTS (SELECT 1 FROM tasks) OR EXISTS (SELECT 1 FROM subtasks))`

// BulkLoad writes every account received from accounts into empty tables
// in one transaction, the way pg_restore does and PostgreSQL's "Populating
// a Database" advises: it drops the foreign keys and the indexes that back
// no constraint, copies the rows, then builds the indexes (a sort, much
// cheaper than a million ordered insertions) and adds the foreign keys back
// (one validating join each). DDL is transactional, so an error or a
// cancelled ctx rolls all of it back: the tables are as they were, empty,
// with every index and key. The tables are locked for the duration.
//
// Ids follow on from where the tables' sequences stand (1 in a fresh
// database), in the order the accounts arrive, whatever ids they carry:
// sent in a fixed order, accounts get the same ids in every run. The
// sequences are moved past the ids only just before COMMIT, since setval
// is not transactional: a load that is rolled back, on purpose or not,
// leaves them where they were, and the next load gets the same ids.
//
// loaded is called after each account's rows are sent; nothing is
// committed until BulkLoad returns nil. It returns ErrNotEmpty, having
// written nothing, when any tenant table has rows.
func (a *Admin) BulkLoad(ctx context.Context, accounts <-chan *strategy.TenantData, commit bool, loaded func(*strategy.TenantData)) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	finish := context.WithoutCancel(ctx)
	conn, err := pool.Conn(ctx)
	if err != nil {
		return pg.Classify(err)
	}
	defer conn.Close()
	err = conn.Raw(func(driverConn any) error {
		tx, err := driverConn.(*stdlib.Conn).Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(finish) //nolint:errcheck // a no-op after Commit
		if _, err := tx.Exec(ctx, "LOCK TABLE accounts, users, projects, tasks, subtasks IN ACCESS EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock the tenant tables: %w", err)
		}
		var empty bool
		if err := tx.QueryRow(ctx, emptyTables).Scan(&empty); err != nil {
			return err
		}
		if !empty {
			return strategy.ErrNotEmpty
		}
		seqs, err := readSequences(ctx, tx)
		if err != nil {
			return err
		}
		rebuild, err := dropDerived(ctx, tx)
		if err != nil {
			return err
		}
		next := seqs.last
		if err := copyBatches(ctx, tx, &next, accounts, loaded); err != nil {
			return err
		}
		for _, stmt := range rebuild {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("rebuild (%s): %w", stmt, err)
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before commit: %w", err)
		}
		if !commit {
			return tx.Rollback(finish)
		}
		if err := seqs.advance(ctx, tx, next); err != nil {
			return err
		}
		return tx.Commit(finish)
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("bulk load interrupted, nothing written: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("bulk load, nothing written: %w", pg.Classify(err))
	}
	return nil
}

// dropDerived drops the tenant tables' foreign keys and the indexes that
// back no constraint, as the migrations made them, and returns the
// statements that recreate them exactly: indexes first, then the keys.
func dropDerived(ctx context.Context, tx pgx.Tx) ([]string, error) {
	var drop, indexes, keys []string
	rows, err := tx.Query(ctx, `
		SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
		FROM pg_constraint c
		WHERE c.contype = 'f' AND c.conrelid = ANY ($1::regclass[])
		ORDER BY c.conrelid::regclass::text, c.conname`, tenantTables)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	for rows.Next() {
		var table, name, def string
		if err := rows.Scan(&table, &name, &def); err != nil {
			return nil, err
		}
		drop = append(drop, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, pg.QuoteIdent(name)))
		keys = append(keys, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", table, pg.QuoteIdent(name), def))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `
		SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
		FROM pg_index i
		WHERE i.indrelid = ANY ($1::regclass[])
		  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)
		ORDER BY 1`, tenantTables)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, err
		}
		drop = append(drop, "DROP INDEX "+name)
		indexes = append(indexes, def)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, stmt := range drop {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return append(indexes, keys...), nil
}

// copyBatches copies accounts in batches of about bulkBatchRows rows,
// giving their rows ids that follow on from next, in the order they arrive.
func copyBatches(ctx context.Context, tx pgx.Tx, next *idCounter, accounts <-chan *strategy.TenantData, loaded func(*strategy.TenantData)) error {
	var batch []*strategy.TenantData
	rows := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := copyBatch(ctx, tx, next, batch); err != nil {
			return err
		}
		for _, d := range batch {
			loaded(d)
		}
		batch, rows = batch[:0], 0
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case d, ok := <-accounts:
			if !ok {
				return flush()
			}
			if err := d.Validate(); err != nil {
				return fmt.Errorf("tenant %s: %w", d.Account.Slug, err)
			}
			batch = append(batch, d)
			if rows += d.Rows(); rows >= bulkBatchRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

// idCounter is the last id given in each tenant table, in tenantTables
// order.
type idCounter [5]int64

// take gives d's rows the ids that follow c, in order.
func (c *idCounter) take(layout pg.Layout, d *strategy.TenantData) {
	next := func(table int) int64 { c[table]++; return c[table] }
	pg.FillIDs(layout, d, next(0), func(int) int64 { return next(1) }, func(int) int64 { return next(2) },
		func(int) int64 { return next(3) }, func(int) int64 { return next(4) })
}

// sequences are the tenant tables' id sequences and the last value each
// handed out, as BulkLoad found them.
type sequences struct {
	names []string // in tenantTables order, as pg_get_serial_sequence names them
	last  idCounter
}

// readSequences finds where the tenant tables' sequences stand. A sequence
// not yet used (or just restarted) hands out its start value next, so
// start-1 counts as its last value. It reads the sequences themselves:
// pg_sequences shows no last value for an unused sequence, not even after
// ALTER SEQUENCE ... RESTART WITH.
func readSequences(ctx context.Context, tx pgx.Tx) (sequences, error) {
	var s sequences
	err := tx.QueryRow(ctx, `SELECT array_agg(pg_get_serial_sequence(t, 'id') ORDER BY n)
		FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n)`, tenantTables).Scan(&s.names)
	if err != nil {
		return s, fmt.Errorf("find the id sequences: %w", err)
	}
	if len(s.names) != len(s.last) || slices.Contains(s.names, "") {
		return s, fmt.Errorf("find the id sequences of %v: got %q", tenantTables, s.names)
	}
	var cols []string
	for _, name := range s.names {
		// name comes quoted from pg_get_serial_sequence.
		cols = append(cols, fmt.Sprintf("(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s)", name))
	}
	row := tx.QueryRow(ctx, "SELECT "+strings.Join(cols, ", "))
	if err := row.Scan(&s.last[0], &s.last[1], &s.last[2], &s.last[3], &s.last[4]); err != nil {
		return s, fmt.Errorf("read the id sequences: %w", err)
	}
	return s, nil
}

// advance moves each sequence that ids were taken from to the last one
// taken, so that the next ordinary insert gets a fresh id.
func (s sequences) advance(ctx context.Context, tx pgx.Tx, last idCounter) error {
	var names []string
	var values []int64
	for t := range last {
		if last[t] != s.last[t] {
			names, values = append(names, s.names[t]), append(values, last[t])
		}
	}
	_, err := tx.Exec(ctx, `SELECT setval(n::regclass, v) FROM unnest($1::text[], $2::bigint[]) AS u(n, v)`, names, values)
	if err != nil {
		return fmt.Errorf("move the id sequences past the loaded rows: %w", err)
	}
	return nil
}

func copyBatch(ctx context.Context, tx pgx.Tx, next *idCounter, batch []*strategy.TenantData) error {
	layout := pg.Layout{Denormalised: true}
	for _, d := range batch {
		next.take(layout, d)
	}
	return pg.CopyRows(ctx, tx, layout, batch, true)
}
