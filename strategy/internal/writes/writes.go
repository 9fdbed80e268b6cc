// Package writes is every strategy's strategy.Writer: one implementation
// of the subtask and task writes, run on a connection each strategy binds
// to the context's tenant (singleschema's gorm scope and row-level
// security, multischema's tenant role and schema, multidb's tenant
// database). Each write is one transaction: it reads the row it changes
// under that scope, locked, so a row the tenant cannot see is
// strategy.ErrNotFound before anything is written, and a version
// compared there cannot go stale before the write.
//
// A write takes two round trips to PostgreSQL, not five: gorm writes
// each statement (so the tenant scope is applied and enforced as in any
// other query), and pgx sends them as pipelines: BEGIN, the statements
// that bind the transaction to the tenant and the locking read go out
// together; the write and COMMIT follow together once the read is
// checked. A read is one round trip (BEGIN, the binding, the read and
// COMMIT). Under load a connection is held for the length of a write's
// conversation with the server, and the pool is small
// (strategy.DefaultMaxConns): at five round trips, the writes of a 90/10
// mix held the connections about as long as all the page reads.
package writes

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// Tx is a strategy's transaction scoped to the tenant on ctx.
type Tx func(ctx context.Context, opts *sql.TxOptions, fn func(*gorm.DB) error) error

// Statement is one SQL statement and its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// Pipe is a strategy's connection for the tenant on ctx: it checks the
// tenant as its Tx does, then runs fn with db, the gorm root that writes
// the tenant's statements (DryRun: nothing is sent through it), c, a
// connection of the tenant's pool, and bind, the statements that bind a
// transaction on c to the tenant (none where the connection is the
// tenant's own database). Errors come back as its Tx's do.
type Pipe func(ctx context.Context, fn func(db *gorm.DB, c *pgx.Conn, bind []Statement) error) error

// Writer implements strategy.Writer over a strategy's Tx and Pipe.
type Writer struct {
	Tx   Tx
	Pipe Pipe
}

var _ strategy.Writer = Writer{}

var readOnly = &sql.TxOptions{ReadOnly: true}

// tenant is the context's tenant, for error messages; the strategy's Tx
// refuses a context without one.
func tenant(ctx context.Context) (models.Account, error) {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return models.Account{}, strategy.ErrNoTenant
	}
	return t, nil
}

func (w Writer) GetSubtask(ctx context.Context, id int64) (strategy.Subtask, error) {
	t, err := tenant(ctx)
	if err != nil {
		return strategy.Subtask{}, err
	}
	var out strategy.Subtask
	err = w.Pipe(ctx, func(db *gorm.DB, c *pgx.Conn, bind []Statement) error {
		read, err := subtaskStatement(db, id, false)
		if err != nil {
			return err
		}
		// BEGIN and COMMIT in the one pipeline: a pipeline up to its
		// Sync would be one implicit transaction without them, but Citus
		// passes a tenant setting on to its workers only from a
		// transaction block.
		return inTx(ctx, c, func() error {
			return send(ctx, c, append(begin(bind, read), commit), func(i int, rows pgx.Rows) (err error) {
				if i == len(bind)+1 {
					out, err = scanSubtask(rows)
				}
				return err
			})
		})
	})
	if err != nil {
		return strategy.Subtask{}, fmt.Errorf("read subtask %d of tenant %s: %w", id, t.Slug, err)
	}
	return out, nil
}

func (w Writer) CreateSubtask(ctx context.Context, in strategy.NewSubtask) (strategy.Subtask, error) {
	t, err := tenant(ctx)
	if err != nil {
		return strategy.Subtask{}, err
	}
	if err := strategy.CheckNewSubtask(in); err != nil {
		return strategy.Subtask{}, err
	}
	row := models.Subtask{TaskID: in.TaskID, Name: in.Name, Details: in.Details, IsComplete: in.IsComplete}
	err = w.Pipe(ctx, func(db *gorm.DB, c *pgx.Conn, bind []Statement) error {
		// The task is looked for under the tenant's scope, and kept from
		// being deleted until the insert commits (the lock a foreign key
		// check takes): another tenant's task is not found here, and is
		// no more found by the insert's foreign key (composite in
		// singleschema, within the tenant's own tables elsewhere).
		task, err := statementOf(dry(db).Model(&models.Task{}).Clauses(clause.Locking{Strength: "KEY SHARE"}).
			Select("id").Where("id = ?", in.TaskID).Take(&models.Task{}))
		if err != nil {
			return err
		}
		insert, err := statementOf(dry(db).Create(&row))
		if err != nil {
			return err
		}
		return inTx(ctx, c, func() error {
			found := false
			err := send(ctx, c, begin(bind, task), func(i int, rows pgx.Rows) error {
				if i == len(bind)+1 {
					found = rows.Next()
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !found {
				return &strategy.ValidationError{Fields: map[string]string{"task_id": "there is no task with this id in this account"}}
			}
			return send(ctx, c, []Statement{insert, commit}, func(i int, rows pgx.Rows) error {
				if i > 0 {
					return nil
				}
				if !rows.Next() {
					return errors.New("the insert returned no id")
				}
				return rows.Scan(&row.ID)
			})
		})
	})
	if err != nil {
		return strategy.Subtask{}, fmt.Errorf("create a subtask under task %d in tenant %s: %w", in.TaskID, t.Slug, err)
	}
	return subtaskOf(row), nil
}

func (w Writer) UpdateSubtask(ctx context.Context, id int64, version string, change strategy.SubtaskChange) (strategy.Subtask, error) {
	t, err := tenant(ctx)
	if err != nil {
		return strategy.Subtask{}, err
	}
	if err := strategy.CheckSubtaskChange(version, change); err != nil {
		return strategy.Subtask{}, err
	}
	set := map[string]any{}
	if change.Name != nil {
		set["name"] = *change.Name
	}
	if change.Details != nil {
		set["details"] = *change.Details
	}
	if change.IsComplete != nil {
		set["is_complete"] = *change.IsComplete
	}
	var out strategy.Subtask
	err = w.Pipe(ctx, func(db *gorm.DB, c *pgx.Conn, bind []Statement) error {
		read, err := subtaskStatement(db, id, true)
		if err != nil {
			return err
		}
		var update Statement
		if len(set) > 0 {
			if update, err = statementOf(dry(db).Model(&models.Subtask{}).Where("id = ?", id).Updates(set)); err != nil {
				return err
			}
		}
		return inTx(ctx, c, func() error {
			cur, err := lockSubtask(ctx, c, bind, read, version)
			if err != nil {
				return err
			}
			if change.Name != nil {
				cur.Name = *change.Name
			}
			if change.Details != nil {
				cur.Details = *change.Details
			}
			if change.IsComplete != nil {
				cur.IsComplete = *change.IsComplete
			}
			cur.Version = Version(cur)
			out = cur
			if len(set) == 0 {
				return send(ctx, c, []Statement{commit}, nil)
			}
			return writeOneRow(ctx, c, update)
		})
	})
	if err != nil {
		return strategy.Subtask{}, fmt.Errorf("update subtask %d of tenant %s: %w", id, t.Slug, err)
	}
	return out, nil
}

func (w Writer) DeleteSubtask(ctx context.Context, id int64, version string) error {
	t, err := tenant(ctx)
	if err != nil {
		return err
	}
	err = w.Pipe(ctx, func(db *gorm.DB, c *pgx.Conn, bind []Statement) error {
		if id <= 0 {
			return strategy.ErrNotFound
		}
		del, err := statementOf(dry(db).Where("id = ?", id).Delete(&models.Subtask{}))
		if err != nil {
			return err
		}
		if version == "" {
			// Nothing to compare: the delete alone, one round trip.
			return inTx(ctx, c, func() error { return writeOneRow(ctx, c, begin(bind, del)...) })
		}
		read, err := subtaskStatement(db, id, true)
		if err != nil {
			return err
		}
		return inTx(ctx, c, func() error {
			if _, err := lockSubtask(ctx, c, bind, read, version); err != nil {
				return err
			}
			return writeOneRow(ctx, c, del)
		})
	})
	if err != nil {
		return fmt.Errorf("delete subtask %d of tenant %s: %w", id, t.Slug, err)
	}
	return nil
}

func (w Writer) CompleteTask(ctx context.Context, id int64) (strategy.Task, error) {
	t, err := tenant(ctx)
	if err != nil {
		return strategy.Task{}, err
	}
	var out strategy.Task
	err = w.Pipe(ctx, func(db *gorm.DB, c *pgx.Conn, bind []Statement) error {
		read, err := statementOf(dry(db).Model(&models.Task{}).Clauses(clause.Locking{Strength: "UPDATE"}).
			Select("id", "name", "is_complete").Where("id = ?", id).Take(&models.Task{}))
		if err != nil {
			return err
		}
		update, err := statementOf(dry(db).Model(&models.Task{}).Where("id = ?", id).Update("is_complete", true))
		if err != nil {
			return err
		}
		return inTx(ctx, c, func() error {
			var task strategy.Task
			found := false
			err := send(ctx, c, begin(bind, read), func(i int, rows pgx.Rows) error {
				if i < len(bind)+1 || !rows.Next() {
					return nil
				}
				found = true
				return rows.Scan(&task.ID, &task.Name, &task.IsComplete)
			})
			if err != nil {
				return err
			}
			if !found {
				return strategy.ErrNotFound
			}
			out = strategy.Task{ID: task.ID, Name: task.Name, IsComplete: true}
			if task.IsComplete {
				return send(ctx, c, []Statement{commit}, nil)
			}
			return writeOneRow(ctx, c, update)
		})
	})
	if err != nil {
		return strategy.Task{}, fmt.Errorf("complete task %d of tenant %s: %w", id, t.Slug, err)
	}
	return out, nil
}

func (w Writer) ListTasks(ctx context.Context, limit int) ([]strategy.Task, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, nil
	}
	var out []strategy.Task
	err = w.Tx(ctx, readOnly, func(tx *gorm.DB) error {
		// projects are joined by id alone: a task's project is its
		// tenant's (the composite foreign key in singleschema, the
		// tenant's own tables elsewhere), and row-level security covers
		// the joined table too.
		return tx.Model(&models.Task{}).
			Select("tasks.id, tasks.name, tasks.is_complete, projects.name AS project_name").
			Joins("JOIN projects ON projects.id = tasks.project_id").
			Order("projects.name, tasks.name, tasks.id").Limit(limit).
			Find(&out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("list the tasks of tenant %s: %w", t.Slug, err)
	}
	return out, nil
}

// commit ends a write's transaction, in the pipeline of its last statement.
var commit = Statement{SQL: "COMMIT"}

// begin is a transaction's first pipeline: BEGIN, the tenant's binding,
// then first.
func begin(bind []Statement, first Statement) []Statement {
	out := make([]Statement, 0, len(bind)+2)
	out = append(out, Statement{SQL: "BEGIN"})
	out = append(out, bind...)
	return append(out, first)
}

// dry is db writing statements without sending them.
func dry(db *gorm.DB) *gorm.DB { return db.Session(&gorm.Session{DryRun: true}) }

// statementOf is the statement a dry gorm chain wrote, or the error it
// met writing it (a missing tenant scope, in singleschema). Take and
// First find nothing in a dry run, which is no error here.
func statementOf(db *gorm.DB) (Statement, error) {
	if db.Error != nil && !errors.Is(db.Error, gorm.ErrRecordNotFound) {
		return Statement{}, db.Error
	}
	return Statement{SQL: db.Statement.SQL.String(), Args: db.Statement.Vars}, nil
}

// subtaskStatement reads subtask id under the tenant scope, locked for
// the rest of the transaction when forUpdate.
func subtaskStatement(db *gorm.DB, id int64, forUpdate bool) (Statement, error) {
	if id <= 0 {
		return Statement{}, strategy.ErrNotFound
	}
	q := dry(db).Model(&models.Subtask{}).Select("id", "task_id", "name", "details", "is_complete").Where("id = ?", id)
	if forUpdate {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return statementOf(q.Take(&models.Subtask{}))
}

// scanSubtask is the one subtask of rows; none is ErrNotFound.
func scanSubtask(rows pgx.Rows) (strategy.Subtask, error) {
	if !rows.Next() {
		return strategy.Subtask{}, strategy.ErrNotFound
	}
	var row models.Subtask
	if err := rows.Scan(&row.ID, &row.TaskID, &row.Name, &row.Details, &row.IsComplete); err != nil {
		return strategy.Subtask{}, err
	}
	return subtaskOf(row), nil
}

// lockSubtask opens the transaction, bound to the tenant, and reads the
// subtask with read (locked), in one round trip; ErrStale when it is no
// longer at version.
func lockSubtask(ctx context.Context, c *pgx.Conn, bind []Statement, read Statement, version string) (strategy.Subtask, error) {
	var cur strategy.Subtask
	err := send(ctx, c, begin(bind, read), func(i int, rows pgx.Rows) (err error) {
		if i == len(bind)+1 {
			cur, err = scanSubtask(rows)
		}
		return err
	})
	if err != nil {
		return strategy.Subtask{}, err
	}
	if cur.Version != version {
		return strategy.Subtask{}, strategy.ErrStale
	}
	return cur, nil
}

// writeOneRow sends stmts and COMMIT in one round trip, and is nil when
// the last of stmts wrote exactly one row: the one read under the same
// scope and lock just before, or, for an unconditional delete, the one
// the id names. None is ErrNotFound, and nothing was written. More would
// take a tenant scope that failed open and an id that is not unique
// (every strategy's subtask and task ids are), and the row-level
// security or the tenant's own tables behind the scope; the COMMIT is
// already on its way then, so this can only say so, loudly.
func writeOneRow(ctx context.Context, c *pgx.Conn, stmts ...Statement) error {
	var n int64
	last := len(stmts) - 1
	err := send(ctx, c, append(stmts, commit), func(i int, rows pgx.Rows) error {
		if i == last {
			for rows.Next() {
			}
			rows.Close()
			n = rows.CommandTag().RowsAffected()
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case n == 0:
		return strategy.ErrNotFound
	case n > 1:
		return fmt.Errorf("a write by id reached %d rows: the tenant scope failed", n)
	}
	return nil
}

// send sends stmts as one pipeline, one round trip, and hands each one's
// rows to each (when not nil), in order. Up to its Sync PostgreSQL runs
// a pipeline as one implicit transaction unless it holds a BEGIN; after
// an error it skips the rest of the pipeline.
//
// A failure that leaves the transaction uncommitted for certain is marked
// pg.NotCommitted, so that the strategy may try the whole write again
// (pg.AgainAfterSplit): any failure of a pipeline without COMMIT (the
// write's COMMIT comes only in its last), and PostgreSQL's own error for
// a statement before the COMMIT, which it then skips. Not a failure of
// the COMMIT itself, nor one of each or of the connection once the
// COMMIT was sent: the server may have committed.
func send(ctx context.Context, c *pgx.Conn, stmts []Statement, each func(i int, rows pgx.Rows) error) error {
	b := &pgx.Batch{}
	commitAt := -1
	for i, s := range stmts {
		b.Queue(s.SQL, s.Args...)
		if s.SQL == commit.SQL {
			commitAt = i
		}
	}
	results := c.SendBatch(ctx, b)
	for i := range stmts {
		rows, err := results.Query()
		var eachErr error
		if err == nil && each != nil {
			eachErr = each(i, rows)
		}
		if rows != nil {
			rows.Close()
			err = errors.Join(err, rows.Err())
		}
		if err == nil && eachErr == nil {
			continue
		}
		var refused *pgconn.PgError
		skipped := i < commitAt && eachErr == nil && errors.As(err, &refused)
		err = errors.Join(eachErr, err, results.Close())
		if commitAt < 0 || skipped {
			err = pg.NotCommitted(err)
		}
		return err
	}
	return results.Close()
}

// inTx runs fn, a conversation that opens a transaction on c, and rolls
// back whatever fn left open (an error, or a stale version, between the
// read and the write). A connection whose transaction cannot be rolled
// back is closed, so that the pool never hands it out again (pgx's
// database/sql driver refuses one left in a transaction, too).
func inTx(ctx context.Context, c *pgx.Conn, fn func() error) error {
	err := fn()
	if c.PgConn().TxStatus() == 'I' {
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
		return errors.Join(err, fmt.Errorf("roll back: %w", rerr), c.Close(rctx))
	}
	return err
}

func subtaskOf(row models.Subtask) strategy.Subtask {
	s := strategy.Subtask{ID: row.ID, TaskID: row.TaskID, Name: row.Name, Details: row.Details, IsComplete: row.IsComplete}
	s.Version = Version(s)
	return s
}

// Version is a digest of what a subtask shows, so any change to it is a
// new version, in every strategy alike and with no column to keep: the
// update compares it under the row's lock. Fields are length-prefixed so
// that no two different subtasks digest the same input.
func Version(s strategy.Subtask) string {
	h := sha256.New()
	var b [8]byte
	for _, n := range []int64{s.ID, s.TaskID, int64(len(s.Name)), int64(len(s.Details))} {
		binary.BigEndian.PutUint64(b[:], uint64(n))
		h.Write(b[:])
	}
	h.Write([]byte(s.Name))
	h.Write([]byte(s.Details))
	if s.IsComplete {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
