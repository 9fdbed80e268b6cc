package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"tenancy/models"
	"tenancy/strategy"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Layout is what differs between the strategies' tables: multidb's and
// multischema's tasks and subtasks have no account_id column, and their ids
// are not drawn from the sequences (see their AssignIDs).
type Layout struct {
	// Denormalised: tasks and subtasks carry account_id (singleschema).
	Denormalised bool
	// FixedIDs: a load moves each sequence past the ids it writes, so that
	// an ordinary insert after it gets a fresh id.
	FixedIDs bool
	// Schema, when set, holds the tenant's tables (multischema): the load's
	// transaction searches it first, then public, where accounts are.
	Schema string
	// AfterAccount are statements run once the account's row is written,
	// before the rows are copied; $1 is the account's id.
	AfterAccount []string
}

// drawIDs takes ids for one tenant's rows from the tables' own sequences in
// one round trip, so that they never collide with rows written by anyone
// else, and foreign keys can be filled in before COPY. Nobody else drawing
// meanwhile, the values are consecutive and follow on from the last ones
// drawn: tenants whose ids are drawn one after another in a fixed order get
// the same ids in every run.
const drawIDs = `
WITH seq AS (
	SELECT pg_get_serial_sequence('accounts', 'id')::regclass AS accounts,
	       pg_get_serial_sequence('users', 'id')::regclass    AS users,
	       pg_get_serial_sequence('projects', 'id')::regclass AS projects,
	       pg_get_serial_sequence('tasks', 'id')::regclass    AS tasks,
	       pg_get_serial_sequence('subtasks', 'id')::regclass AS subtasks
)
SELECT nextval(seq.accounts),
       ARRAY(SELECT nextval(seq.users)    FROM generate_series(1, $1)),
       ARRAY(SELECT nextval(seq.projects) FROM generate_series(1, $2)),
       ARRAY(SELECT nextval(seq.tasks)    FROM generate_series(1, $3)),
       ARRAY(SELECT nextval(seq.subtasks) FROM generate_series(1, $4))
FROM seq`

// drawTenantIDs gives d's rows ids drawn from the sequences of pool's
// database (drawIDs).
func DrawTenantIDs(ctx context.Context, pool *sql.DB, layout Layout, d *strategy.TenantData) error {
	var account int64
	var users, projects, tasks, subtasks []int64
	err := WithPgxConn(ctx, pool, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, drawIDs, len(d.Users), len(d.Projects), len(d.Tasks), len(d.Subtasks)).
			Scan(&account, &users, &projects, &tasks, &subtasks)
	})
	if err != nil {
		return fmt.Errorf("draw ids: %w", err)
	}
	// Within one statement a sequence hands out increasing values, but an
	// ARRAY subquery promises no order; sorted, ids follow generation order,
	// so "ORDER BY id" reads rows back in the order they were generated.
	for _, ids := range [][]int64{users, projects, tasks, subtasks} {
		slices.Sort(ids)
	}
	FillIDs(layout, d, account, func(i int) int64 { return users[i] }, func(i int) int64 { return projects[i] },
		func(i int) int64 { return tasks[i] }, func(i int) int64 { return subtasks[i] })
	return nil
}

// loadTenant writes d, whose ids AssignIDs has given, in one transaction on
// a connection of pool, with PostgreSQL's COPY protocol for every table but
// accounts. Cancelling ctx stops the work wherever it is (nothing is
// committed before COMMIT); COMMIT itself is sent only while ctx is live,
// and on a context cancellation cannot cut short, since a COMMIT
// interrupted half-way may take effect on the server while the client
// reports failure. So nil means committed, and an error means nothing was
// written.
//
// The transaction commits with synchronous_commit off: a crash right after
// may lose the last few accounts (each whole, never in part), which sample
// data can afford; flushWAL makes everything durable at the end of a run.
func LoadTenant(ctx context.Context, pool *sql.DB, layout Layout, d *strategy.TenantData, commit bool) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if !d.HasIDs() {
		return errors.New("load: the rows have no ids yet (AssignIDs gives them)")
	}
	finish := context.WithoutCancel(ctx)
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		// Rollback after Commit is a no-op; after a cancelled COPY pgx has
		// closed the connection, and database/sql discards it.
		defer tx.Rollback(finish) //nolint:errcheck
		if err := copyTenant(ctx, tx, layout, d); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before commit: %w", err)
		}
		if !commit {
			return tx.Rollback(finish)
		}
		return tx.Commit(finish)
	})
}

// insertAccount writes the account with the id it was given. OVERRIDING
// SYSTEM VALUE lets an explicit id into an identity column declared either
// GENERATED BY DEFAULT or GENERATED ALWAYS.
const insertAccount = `INSERT INTO accounts (id, slug, name) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3)`

// advanceSequences moves each table's sequence to at least the highest id
// given ($1 accounts ... $5 subtasks; 0 for a table with no rows), never
// back. setval is not transactional: were the load rolled back, the
// sequences stay where they were moved, which costs unused ids and no more.
const advanceSequences = `
SELECT setval(s, greatest(v.last, pg_sequence_last_value(s)))
FROM (VALUES ('accounts', $1::bigint), ('users', $2::bigint), ('projects', $3::bigint),
             ('tasks', $4::bigint), ('subtasks', $5::bigint)) AS v(tbl, last),
     LATERAL (SELECT pg_get_serial_sequence(v.tbl, 'id')::regclass AS s) seq
WHERE v.last > 0`

func copyTenant(ctx context.Context, tx pgx.Tx, layout Layout, d *strategy.TenantData) error {
	var b pgx.Batch
	b.Queue("SET LOCAL synchronous_commit TO off")
	if layout.Schema != "" {
		b.Queue("SELECT set_config('search_path', $1, true)", QuoteIdent(layout.Schema)+", public")
	}
	b.Queue(insertAccount, int64(d.Account.ID), d.Account.Slug, d.Account.Name)
	for _, stmt := range layout.AfterAccount {
		b.Queue(stmt, int64(d.Account.ID))
	}
	if layout.FixedIDs {
		var highest []any
		for _, ids := range d.IDs() {
			top := int64(0)
			if len(ids) > 0 {
				top = slices.Max(ids)
			}
			highest = append(highest, top)
		}
		b.Queue(advanceSequences, highest...)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return CopyRows(ctx, tx, layout, []*strategy.TenantData{d}, false)
}

// fillIDs gives d's rows their ids (the account gets account, the i-th row
// of each other table user(i), project(i), ...) and fills in every foreign
// key from them.
func FillIDs(layout Layout, d *strategy.TenantData, account int64, user, project, task, subtask func(i int) int64) {
	acct := models.TenantID(account)
	d.Account.ID = acct
	for i := range d.Users {
		d.Users[i].ID, d.Users[i].AccountID = user(i), acct
	}
	for i := range d.Projects {
		d.Projects[i].ID, d.Projects[i].AccountID = project(i), acct
	}
	for i := range d.Tasks {
		t := &d.Tasks[i]
		t.ID, t.ProjectID = task(i), d.Projects[t.Project].ID
		if layout.Denormalised {
			t.AccountID = acct
		}
	}
	for i := range d.Subtasks {
		s := &d.Subtasks[i]
		s.ID, s.TaskID = subtask(i), d.Tasks[s.Task].ID
		if layout.Denormalised {
			s.AccountID = acct
		}
	}
}

// copyRows copies the rows of every account in batch with one COPY per
// table, the accounts' own rows too when withAccounts is set.
func CopyRows(ctx context.Context, tx pgx.Tx, layout Layout, batch []*strategy.TenantData, withAccounts bool) error {
	type table struct {
		name    string
		columns []string
		count   func(d *strategy.TenantData) int
		row     func(d *strategy.TenantData, i int) []any
	}
	tables := []table{
		{"users", []string{"id", "account_id", "email", "first_name", "last_name", "password", "is_active", "date_joined"},
			func(d *strategy.TenantData) int { return len(d.Users) },
			func(d *strategy.TenantData, i int) []any {
				u := &d.Users[i]
				return []any{u.ID, int64(u.AccountID), u.Email, u.FirstName, u.LastName, u.Password, u.IsActive, u.DateJoined}
			}},
		{"projects", []string{"id", "account_id", "name", "details"},
			func(d *strategy.TenantData) int { return len(d.Projects) },
			func(d *strategy.TenantData, i int) []any {
				p := &d.Projects[i]
				return []any{p.ID, int64(p.AccountID), p.Name, p.Details}
			}},
		{"tasks", layout.columns("id", "project_id", "name", "is_complete", "details"),
			func(d *strategy.TenantData) int { return len(d.Tasks) },
			func(d *strategy.TenantData, i int) []any {
				t := &d.Tasks[i]
				return layout.values(t.AccountID, t.ID, t.ProjectID, t.Name, t.IsComplete, t.Details)
			}},
		{"subtasks", layout.columns("id", "task_id", "name", "is_complete", "details"),
			func(d *strategy.TenantData) int { return len(d.Subtasks) },
			func(d *strategy.TenantData, i int) []any {
				s := &d.Subtasks[i]
				return layout.values(s.AccountID, s.ID, s.TaskID, s.Name, s.IsComplete, s.Details)
			}},
	}
	if withAccounts {
		tables = append([]table{{"accounts", []string{"id", "slug", "name"},
			func(*strategy.TenantData) int { return 1 },
			func(d *strategy.TenantData, _ int) []any {
				return []any{int64(d.Account.ID), d.Account.Slug, d.Account.Name}
			}}}, tables...)
	}
	for _, t := range tables {
		want := 0
		for _, d := range batch {
			want += t.count(d)
		}
		if want == 0 {
			continue
		}
		a, i := 0, 0 // account and row within it
		next := func() ([]any, error) {
			for a < len(batch) && i >= t.count(batch[a]) {
				a, i = a+1, 0
			}
			if a == len(batch) {
				return nil, nil
			}
			i++
			return t.row(batch[a], i-1), nil
		}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, pgx.CopyFromFunc(next))
		if err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
		if n != int64(want) {
			return fmt.Errorf("copy %s: wrote %d of %d rows", t.name, n, want)
		}
	}
	return nil
}

// columns puts account_id first where the table has it.
func (l Layout) columns(cols ...string) []string {
	if l.Denormalised {
		return append([]string{"account_id"}, cols...)
	}
	return cols
}

func (l Layout) values(account models.TenantID, vals ...any) []any {
	if l.Denormalised {
		return append([]any{int64(account)}, vals...)
	}
	return vals
}

// flushWAL returns once everything written to the server's write-ahead
// log so far is on disk, and with it every asynchronous commit before the
// call. Any role may read the two positions; the WAL writer flushes
// asynchronous commits within a few wal_writer_delay (200 ms by default).
func FlushWAL(ctx context.Context, pool *sql.DB) error {
	var target string
	if err := pool.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
		return fmt.Errorf("flush the write-ahead log: %w", err)
	}
	// A synchronous commit that wrote to the log returns once the log up
	// to its commit record is on disk, everything before it included: so
	// one such transaction flushes now, where waiting for the WAL writer
	// takes up to a few hundred milliseconds (most of a one-tenant
	// import's time). A transactional logical message is the smallest
	// write there is (a transaction id alone writes nothing, and its
	// commit waits for nothing). Should the message be refused, the wait
	// below still does the job.
	_ = WithTx(ctx, pool, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO on"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "SELECT pg_logical_emit_message(true, 'tenancy', 'flush')")
		return err
	})
	const poll = 20 * time.Millisecond
	for {
		var done bool
		err := pool.QueryRowContext(ctx, "SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", target).Scan(&done)
		if err != nil {
			return fmt.Errorf("flush the write-ahead log: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush the write-ahead log: %w", ctx.Err())
		case <-time.After(poll):
		}
	}
}

// truncateTenantTables empties every table of the schema in one statement
// and restarts the ids, returning how many accounts there were.
func TruncateTenantTables(ctx context.Context, pool *sql.DB) (int, error) {
	var n int
	err := WithTx(ctx, pool, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM accounts").Scan(&n); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "TRUNCATE accounts, users, projects, tasks, subtasks, subtask_counts CONTINUE IDENTITY")
		return err
	})
	return n, err
}

// withTx runs fn in a transaction on pool, committing if fn returns nil.
func WithTx(ctx context.Context, pool *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback() //nolint:errcheck // the error from fn says more
		return err
	}
	return tx.Commit()
}

// forEachIndex calls fn(i) for every i in [0, n) on at most workers
// goroutines and returns when all are done.
func ForEachIndex(n, workers int, fn func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				fn(i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// firstErrors joins the first few of errs (nil ones skipped) and counts the
// rest, so that 100 tenant databases failing the same way make one readable
// message rather than 100 lines.
func FirstErrors(errs []error) error {
	const shown = 3
	var keep []error
	failed := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if len(keep) < shown {
			keep = append(keep, err)
		}
	}
	if failed > shown {
		keep = append(keep, fmt.Errorf("and %d more", failed-shown))
	}
	return errors.Join(keep...)
}
