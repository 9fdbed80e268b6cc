// Package pages builds and keeps the SQL of the subtask list page, which
// every strategy serves: one statement that reads a page and its total,
// from whichever end of the tenant's list is nearer, written by gorm once
// per shape and kept (see Statements). Each strategy sends it its own way.
package pages

import (
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// Query is how the subtask list differs between the strategies.
type Query struct {
	// Denormalised joins parents through (account_id, id), as the
	// singleschema keys and indexes are built; multidb joins on id alone.
	Denormalised bool
	// SchemaOf, when set, names the schema of each tenant's tables, and
	// the statement names every table with its schema (accounts with
	// public), as multischema's are: then it means the same whatever the
	// search_path, and PostgreSQL keeps its plan from one execution to the
	// next (a change of search_path makes it plan again).
	SchemaOf func(models.TenantID) string
}

// markerSchema stands for the tenant's schema in a statement written for
// a Query with SchemaOf; Statement puts the schema in its place.
const markerSchema = "tenancy_schema_marker"

// table is the model's table as the statement names it: the plain name, or
// the marker schema's.
func (q Query) table(db *gorm.DB, model any, name string) *gorm.DB {
	db = db.Model(model)
	if q.SchemaOf != nil {
		db = db.Table(markerSchema + "." + name)
	}
	return db
}

// join names a parent table in a JOIN: the plain name, or the marker
// schema's (public for accounts). Either way the query refers to it by
// its plain name.
func (q Query) join(name string) string {
	switch {
	case q.SchemaOf == nil:
		return name
	case name == "accounts":
		return "public.accounts"
	}
	return pg.QuoteIdent(markerSchema) + "." + name
}

// Snapshot is how a list read that takes more than one statement runs: its
// statements see one snapshot, so a concurrent write cannot make the total
// and the rows disagree.
func Snapshot() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}

// subtaskColumns are the columns of a list row. Each row names its account
// as stored, not as the request assumed, so that a leak would show in the
// row itself.
const subtaskColumns = "subtasks.id, subtasks.name, subtasks.is_complete, subtasks.details, " +
	"tasks.name AS task_name, projects.name AS project_name, accounts.slug AS account_slug, accounts.name AS account_name"

// joinParents adds the task, project and account of each subtask. LEFT
// JOINs: the foreign keys make every parent exist, so the rows are the same;
// but were a foreign subtask ever to get through, row-level security on its
// parents would make an inner join drop it silently, while here it comes
// back with an empty account, which a leak check counts.
func joinParents(db *gorm.DB, q Query) *gorm.DB {
	tasks, projects, accounts := q.join("tasks"), q.join("projects"), q.join("accounts")
	if q.Denormalised {
		return db.Joins("LEFT JOIN " + tasks + " ON tasks.account_id = subtasks.account_id AND tasks.id = subtasks.task_id").
			Joins("LEFT JOIN " + projects + " ON projects.account_id = tasks.account_id AND projects.id = tasks.project_id").
			Joins("LEFT JOIN " + accounts + " ON accounts.id = subtasks.account_id")
	}
	return db.Joins("LEFT JOIN " + tasks + " ON tasks.id = subtasks.task_id").
		Joins("LEFT JOIN " + projects + " ON projects.id = tasks.project_id").
		Joins("LEFT JOIN " + accounts + " ON accounts.id = projects.account_id")
}

// Row is a list row with the list's total, which comes back on every
// row so that a page and its total take one statement.
type Row struct {
	models.SubtaskRow
	Total int64
}

// Check refuses a page number below 1 (ErrPageNotFound) and a page size
// below 1 before any SQL is written.
func Check(page, perPage int) error {
	if perPage < 1 {
		return fmt.Errorf("list subtasks: page size %d: want at least 1", perPage)
	}
	if page < 1 {
		return strategy.ErrPageNotFound
	}
	return nil
}

// PageQuery is the statement, not yet run, that reads one page of
// the tenant's subtasks, ordered by name then id, with their total. In
// singleschema db's context makes the tenant scope add "account_id = ?" to
// each table read, the sub-queries included.
//
// One statement, so one round trip and one snapshot. The total is the
// trigger-kept count, not a count(*) of the tenant's subtasks. The page's
// ids are found on the (account_id, name, id) index alone, and only those
// rows are read and joined to their parents: joining before the OFFSET
// would join every skipped row too.
//
// An OFFSET still walks the index entries before the page, so a big
// tenant's last page would cost a walk over all its subtasks. A page nearer
// the end (fromEnd, chosen by the caller from the tenant's last known
// total) is read backwards from the end instead: the count in the same
// snapshot says how many rows follow the page, so the rows are exact
// whichever end is chosen, and once the tenant's total is known no page
// walks more than about half the tenant. This trusts the kept count: were
// it wrong (a restore without the triggers), a page read from the end
// would show the tenant's own rows at the wrong place, and a tenant
// without a count row would show none; "tenancy check" finds such counts
// and gives the SQL that recounts them. A version that chose the end in
// SQL, two branches gated on the count, had one more table for row-level
// security to guard, and that alone cost about two points of the RLS
// benchmark.
//
// Each row is read by id, with its parents, in a lateral sub-query. As a
// plain join the generic plan, which does not know the page is ten rows,
// hash-joined the tenant's whole index, and looked the tasks up by the
// wrong index; per row, it looks each parent up by its key.
func PageQuery(db *gorm.DB, q Query, page, perPage int, fromEnd bool) *gorm.DB {
	offset := (page - 1) * perPage
	count := q.table(db, &models.SubtaskCount{}, "subtask_counts").Select("subtask_counts.subtasks AS n")
	ids := db.Table("(?) AS counts", count).Select(pagedColumns + ", counts.n AS total")
	if !fromEnd {
		forward := q.table(db, &models.Subtask{}, "subtasks").Select("subtasks.id").
			Order("subtasks.name, subtasks.id").Limit(perPage).Offset(offset)
		ids = ids.Joins("CROSS JOIN LATERAL (?) AS page", forward)
	} else {
		// gorm's Limit and Offset take numbers only: these depend on the
		// count, so the ORDER BY carries them. perPage is the caller's
		// int, offset a bind parameter.
		fromEnd := q.table(db, &models.Subtask{}, "subtasks").Select("subtasks.id, subtasks.name").
			Order(clause.OrderBy{Expression: clause.Expr{
				SQL:  fmt.Sprintf("subtasks.name DESC, subtasks.id DESC LIMIT %d OFFSET greatest(counts.n - ? - %d, 0)", perPage, perPage),
				Vars: []any{offset},
			}})
		// A partial last page is fewer than perPage rows from the end.
		backward := db.Table("(?) AS from_end", fromEnd).Select("from_end.id").
			Order(clause.OrderBy{Expression: clause.Expr{
				SQL:  "from_end.name DESC, from_end.id DESC LIMIT greatest(counts.n - ?, 0)",
				Vars: []any{offset},
			}})
		ids = ids.Joins("CROSS JOIN LATERAL (?) AS page", backward)
	}
	row := joinParents(q.table(db, &models.Subtask{}, "subtasks").Select(subtaskColumns).Where("subtasks.id = page.id"), q).Limit(1)
	return ids.Joins("CROSS JOIN LATERAL (?) AS paged", row).Order("paged.name, paged.id")
}

// pagedColumns are subtaskColumns as the lateral sub-query "paged" names them.
const pagedColumns = "paged.id, paged.name, paged.is_complete, paged.details, " +
	"paged.task_name, paged.project_name, paged.account_slug, paged.account_name"

// Finish makes the page of rows. A page without rows is past the end,
// or the first page of an empty list (which exists): a second statement
// tells which.
func Finish(tx *gorm.DB, page, perPage int, rows []Row) (strategy.SubtaskPage, error) {
	if len(rows) > 0 {
		return New(page, perPage, rows[0].Total, rows), nil
	}
	var n int64
	if err := tx.Model(&models.SubtaskCount{}).Select("coalesce(sum(subtasks), 0)").Scan(&n).Error; err != nil {
		return strategy.SubtaskPage{}, fmt.Errorf("count subtasks: %w", err)
	}
	out := New(page, perPage, n, nil)
	if page > out.Pages {
		return out, strategy.ErrPageNotFound
	}
	return out, nil
}

func New(page, perPage int, total int64, rows []Row) strategy.SubtaskPage {
	out := strategy.SubtaskPage{Page: page, Total: total, Pages: int((total + int64(perPage) - 1) / int64(perPage)), Rows: make([]models.SubtaskRow, len(rows))}
	if out.Pages == 0 {
		out.Pages = 1 // an empty list still has a first page
	}
	for i, r := range rows {
		out.Rows[i] = r.SubtaskRow
	}
	return out
}

// Scan reads list rows in subtaskColumns order, then the total.
// The parents' columns come from LEFT JOINs and may be NULL (see
// joinParents), which reads as "".
func Scan(rows pgx.Rows, into *[]Row) error {
	for rows.Next() {
		var r Row
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
