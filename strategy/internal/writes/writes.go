// Package writes is every strategy's strategy.Writer: one implementation
// of the subtask and task writes, run inside the transaction each strategy
// scopes to the context's tenant (singleschema's gorm scope and row-level
// security, multischema's tenant role and schema, multidb's tenant
// database). Each write is one transaction: it reads the row it changes
// under that scope, locked, so a row the tenant cannot see is
// strategy.ErrNotFound before anything is written, and a version
// compared there cannot go stale before the write.
package writes

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"tenancy/models"
	"tenancy/strategy"
)

// Tx is a strategy's transaction scoped to the tenant on ctx.
type Tx func(ctx context.Context, opts *sql.TxOptions, fn func(*gorm.DB) error) error

// Writer implements strategy.Writer over a strategy's Tx.
type Writer struct {
	Tx Tx
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
	err = w.Tx(ctx, readOnly, func(tx *gorm.DB) error {
		out, err = takeSubtask(tx, id, false)
		return err
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
	var out strategy.Subtask
	err = w.Tx(ctx, nil, func(tx *gorm.DB) error {
		// The task is looked for under the tenant's scope, and kept from
		// being deleted until the insert commits (the lock a foreign key
		// check takes): another tenant's task is not found here, and is
		// no more found by the insert's foreign key (composite in
		// singleschema, within the tenant's own tables elsewhere).
		var task models.Task
		err := tx.Model(&models.Task{}).Clauses(clause.Locking{Strength: "KEY SHARE"}).
			Select("id").Where("id = ?", in.TaskID).Take(&task).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return &strategy.ValidationError{Fields: map[string]string{"task_id": "there is no task with this id in this account"}}
		}
		if err != nil {
			return err
		}
		row := models.Subtask{TaskID: in.TaskID, Name: in.Name, Details: in.Details, IsComplete: in.IsComplete}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		out = subtaskOf(row)
		return nil
	})
	if err != nil {
		return strategy.Subtask{}, fmt.Errorf("create a subtask under task %d in tenant %s: %w", in.TaskID, t.Slug, err)
	}
	return out, nil
}

func (w Writer) UpdateSubtask(ctx context.Context, id int64, version string, change strategy.SubtaskChange) (strategy.Subtask, error) {
	t, err := tenant(ctx)
	if err != nil {
		return strategy.Subtask{}, err
	}
	if err := strategy.CheckSubtaskChange(version, change); err != nil {
		return strategy.Subtask{}, err
	}
	var out strategy.Subtask
	err = w.Tx(ctx, nil, func(tx *gorm.DB) error {
		cur, err := takeSubtask(tx, id, true)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return strategy.ErrStale
		}
		set := map[string]any{}
		if change.Name != nil {
			cur.Name = *change.Name
			set["name"] = cur.Name
		}
		if change.Details != nil {
			cur.Details = *change.Details
			set["details"] = cur.Details
		}
		if change.IsComplete != nil {
			cur.IsComplete = *change.IsComplete
			set["is_complete"] = cur.IsComplete
		}
		if len(set) > 0 {
			res := tx.Model(&models.Subtask{}).Where("id = ?", id).Updates(set)
			if err := oneRow(res); err != nil {
				return err
			}
		}
		cur.Version = Version(cur)
		out = cur
		return nil
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
	err = w.Tx(ctx, nil, func(tx *gorm.DB) error {
		if version != "" {
			cur, err := takeSubtask(tx, id, true)
			if err != nil {
				return err
			}
			if cur.Version != version {
				return strategy.ErrStale
			}
		}
		return oneRow(tx.Where("id = ?", id).Delete(&models.Subtask{}))
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
	err = w.Tx(ctx, nil, func(tx *gorm.DB) error {
		var task models.Task
		err := tx.Model(&models.Task{}).Clauses(clause.Locking{Strength: "UPDATE"}).
			Select("id", "name", "is_complete").Where("id = ?", id).Take(&task).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return strategy.ErrNotFound
		}
		if err != nil {
			return err
		}
		if !task.IsComplete {
			if err := oneRow(tx.Model(&models.Task{}).Where("id = ?", id).Update("is_complete", true)); err != nil {
				return err
			}
		}
		out = strategy.Task{ID: task.ID, Name: task.Name, IsComplete: true}
		return nil
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

// takeSubtask reads subtask id under the transaction's tenant scope,
// locked for the rest of the transaction when forUpdate.
func takeSubtask(tx *gorm.DB, id int64, forUpdate bool) (strategy.Subtask, error) {
	if id <= 0 {
		return strategy.Subtask{}, strategy.ErrNotFound
	}
	q := tx.Model(&models.Subtask{}).Select("id", "task_id", "name", "details", "is_complete").Where("id = ?", id)
	if forUpdate {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var row models.Subtask
	err := q.Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return strategy.Subtask{}, strategy.ErrNotFound
	case err != nil:
		return strategy.Subtask{}, err
	}
	return subtaskOf(row), nil
}

// oneRow is nil when res wrote exactly one row: the one read under the
// same scope and lock just before, or, for an unconditional delete, the
// one the id names. None is ErrNotFound; more would be a scope that
// failed open, and rolls the transaction back.
func oneRow(res *gorm.DB) error {
	switch {
	case res.Error != nil:
		return res.Error
	case res.RowsAffected == 0:
		return strategy.ErrNotFound
	case res.RowsAffected > 1:
		return fmt.Errorf("a write by id reached %d rows: the tenant scope failed", res.RowsAffected)
	}
	return nil
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
