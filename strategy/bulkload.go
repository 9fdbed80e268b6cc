package strategy

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"tenancy/models"
)

// ErrNotEmpty: BulkLoad needs tables with no rows at all.
var ErrNotEmpty = errors.New("the tenant tables are not empty")

// bulkBatchRows is how many rows BulkLoad gathers before it copies them:
// enough that a COPY's fixed cost is negligible, few enough that memory
// stays small.
const bulkBatchRows = 50_000

// tenantTables in foreign-key order.
var tenantTables = []string{"accounts", "users", "projects", "tasks", "subtasks"}

// CanBulkLoad reports whether BulkLoad can run: every tenant table empty.
func (a *singleSchemaAdmin) CanBulkLoad(ctx context.Context) (bool, error) {
	pool, _, err := a.conn()
	if err != nil {
		return false, err
	}
	var empty bool
	if err := pool.QueryRowContext(ctx, emptyTables).Scan(&empty); err != nil {
		return false, fmt.Errorf("look for existing rows: %w", classify(err))
	}
	return empty, nil
}

const emptyTables = `SELECT NOT (EXISTS (SELECT FROM accounts) OR EXISTS (SELECT FROM users) OR EXISTS (SELECT FROM projects)
	OR EXISTS (SELECT FROM tasks) OR EXISTS (SELECT FROM subtasks))`

// BulkLoad writes every account received from accounts into empty tables
// in one transaction, the way pg_restore does and PostgreSQL's "Populating
// a Database" advises: it drops the foreign keys and the indexes that back
// no constraint, copies the rows, then builds the indexes (a sort, much
// cheaper than a million ordered insertions) and adds the foreign keys back
// (one validating join each). DDL is transactional, so an error or a
// cancelled ctx rolls all of it back: the tables are as they were, empty,
// with every index and key. The tables are locked for the duration.
//
// loaded is called after each account's rows are sent; nothing is
// committed until BulkLoad returns nil. It returns ErrNotEmpty, having
// written nothing, when any tenant table has rows.
func (a *singleSchemaAdmin) BulkLoad(ctx context.Context, accounts <-chan *TenantData, commit bool, loaded func(*TenantData)) error {
	pool, _, err := a.conn()
	if err != nil {
		return err
	}
	finish := context.WithoutCancel(ctx)
	conn, err := pool.Conn(ctx)
	if err != nil {
		return classify(err)
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
			return ErrNotEmpty
		}
		rebuild, err := dropDerived(ctx, tx)
		if err != nil {
			return err
		}
		if err := copyBatches(ctx, tx, accounts, loaded); err != nil {
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
		return tx.Commit(finish)
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("bulk load interrupted, nothing written: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("bulk load, nothing written: %w", classify(err))
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
		drop = append(drop, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, quoteIdent(name)))
		keys = append(keys, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", table, quoteIdent(name), def))
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

// copyBatches copies accounts in batches of about bulkBatchRows rows.
func copyBatches(ctx context.Context, tx pgx.Tx, accounts <-chan *TenantData, loaded func(*TenantData)) error {
	var batch []*TenantData
	rows := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := copyBatch(ctx, tx, batch); err != nil {
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
			if err := d.validate(); err != nil {
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

// reserveBlocks takes a block of ids from each table's sequence. The
// tables are locked, so no INSERT can draw from the sequences meanwhile.
const reserveBlocks = `
SELECT setval(s.accounts, nextval(s.accounts) + $1 - 1),
       CASE WHEN $2 > 0 THEN setval(s.users, nextval(s.users) + $2 - 1) END,
       CASE WHEN $3 > 0 THEN setval(s.projects, nextval(s.projects) + $3 - 1) END,
       CASE WHEN $4 > 0 THEN setval(s.tasks, nextval(s.tasks) + $4 - 1) END,
       CASE WHEN $5 > 0 THEN setval(s.subtasks, nextval(s.subtasks) + $5 - 1) END
FROM (SELECT pg_get_serial_sequence('accounts', 'id')::regclass AS accounts,
             pg_get_serial_sequence('users', 'id')::regclass    AS users,
             pg_get_serial_sequence('projects', 'id')::regclass AS projects,
             pg_get_serial_sequence('tasks', 'id')::regclass    AS tasks,
             pg_get_serial_sequence('subtasks', 'id')::regclass AS subtasks) s`

func copyBatch(ctx context.Context, tx pgx.Tx, batch []*TenantData) error {
	var n [5]int64
	n[0] = int64(len(batch))
	for _, d := range batch {
		n[1] += int64(len(d.Users))
		n[2] += int64(len(d.Projects))
		n[3] += int64(len(d.Tasks))
		n[4] += int64(len(d.Subtasks))
	}
	var last [5]*int64
	if err := tx.QueryRow(ctx, reserveBlocks, n[0], n[1], n[2], n[3], n[4]).Scan(&last[0], &last[1], &last[2], &last[3], &last[4]); err != nil {
		return fmt.Errorf("reserve ids: %w", err)
	}
	var next [5]int64
	for i := range next {
		if last[i] != nil {
			next[i] = *last[i] - n[i] + 1
		}
	}
	take := func(table int) int64 { id := next[table]; next[table]++; return id }
	layout := bulkLayout{denormalised: true}
	for _, d := range batch {
		d.Account.ID = models.TenantID(take(0))
		assignIDs(layout, d, func(int) int64 { return take(1) }, func(int) int64 { return take(2) },
			func(int) int64 { return take(3) }, func(int) int64 { return take(4) })
	}
	return copyRows(ctx, tx, layout, batch, true)
}
