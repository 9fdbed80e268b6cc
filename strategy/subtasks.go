package strategy

import (
	"database/sql"
	"fmt"

	"gorm.io/gorm"

	"tenancy/models"
)

// subtaskQuery is how the subtask list differs between the strategies.
type subtaskQuery struct {
	// denormalised joins parents through (account_id, id), as the
	// singleschema keys and indexes are built; multidb joins on id alone.
	denormalised bool
}

// snapshot is how the list is read: its count and its page come from one
// snapshot, so a concurrent write cannot make them disagree.
func snapshot() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}

// listSubtasks reads one page of subtasks, ordered by name then id, in two
// statements on tx: a count and the page itself. In singleschema tx's
// context makes the tenant scope add "subtasks.account_id = ?" to both.
func listSubtasks(tx *gorm.DB, q subtaskQuery, page, perPage int) (SubtaskPage, error) {
	if perPage < 1 {
		return SubtaskPage{}, fmt.Errorf("list subtasks: page size %d: want at least 1", perPage)
	}
	var total int64
	if err := tx.Model(&models.Subtask{}).Count(&total).Error; err != nil {
		return SubtaskPage{}, fmt.Errorf("count subtasks: %w", err)
	}
	out := SubtaskPage{Page: page, Total: total, Pages: int((total + int64(perPage) - 1) / int64(perPage))}
	if out.Pages == 0 {
		out.Pages = 1 // an empty list still has a first page
	}
	if page < 1 || page > out.Pages {
		return out, ErrPageNotFound
	}

	// Each row names its account as stored, not as the request assumed, so
	// that a leak would show in the row itself. LEFT JOINs: the foreign keys
	// make every parent exist, so the rows are the same; but were a foreign
	// subtask ever to get through, row-level security on its parents would
	// make an inner join drop it silently, while here it comes back with an
	// empty account, which a leak check counts.
	sel := tx.Model(&models.Subtask{}).Select("subtasks.id, subtasks.name, subtasks.is_complete, subtasks.details, " +
		"tasks.name AS task_name, projects.name AS project_name, accounts.slug AS account_slug, accounts.name AS account_name")
	if q.denormalised {
		sel = sel.Joins("LEFT JOIN tasks ON tasks.account_id = subtasks.account_id AND tasks.id = subtasks.task_id").
			Joins("LEFT JOIN projects ON projects.account_id = tasks.account_id AND projects.id = tasks.project_id").
			Joins("LEFT JOIN accounts ON accounts.id = subtasks.account_id")
	} else {
		sel = sel.Joins("LEFT JOIN tasks ON tasks.id = subtasks.task_id").
			Joins("LEFT JOIN projects ON projects.id = tasks.project_id").
			Joins("LEFT JOIN accounts ON accounts.id = projects.account_id")
	}
	rows := make([]models.SubtaskRow, 0, perPage)
	err := sel.Order("subtasks.name, subtasks.id").
		Limit(perPage).Offset((page - 1) * perPage).
		Scan(&rows).Error
	if err != nil {
		return SubtaskPage{}, fmt.Errorf("read subtask page %d: %w", page, err)
	}
	out.Rows = rows
	return out, nil
}
