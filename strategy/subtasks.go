package strategy

import (
	"database/sql"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"tenancy/models"
)

// subtaskQuery is how the subtask list differs between the strategies.
type subtaskQuery struct {
	// denormalised joins parents through (account_id, id), as the
	// singleschema keys and indexes are built; multidb joins on id alone.
	denormalised bool
}

// snapshot is how a list read that takes more than one statement runs: its
// statements see one snapshot, so a concurrent write cannot make the total
// and the rows disagree.
func snapshot() *sql.TxOptions {
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
func joinParents(db *gorm.DB, q subtaskQuery) *gorm.DB {
	if q.denormalised {
		return db.Joins("LEFT JOIN tasks ON tasks.account_id = subtasks.account_id AND tasks.id = subtasks.task_id").
			Joins("LEFT JOIN projects ON projects.account_id = tasks.account_id AND projects.id = tasks.project_id").
			Joins("LEFT JOIN accounts ON accounts.id = subtasks.account_id")
	}
	return db.Joins("LEFT JOIN tasks ON tasks.id = subtasks.task_id").
		Joins("LEFT JOIN projects ON projects.id = tasks.project_id").
		Joins("LEFT JOIN accounts ON accounts.id = projects.account_id")
}

// pagedRow is a list row with the list's total, which comes back on every
// row so that a page and its total take one statement.
type pagedRow struct {
	models.SubtaskRow
	Total int64
}

func checkPage(page, perPage int) error {
	if perPage < 1 {
		return fmt.Errorf("list subtasks: page size %d: want at least 1", perPage)
	}
	if page < 1 {
		return ErrPageNotFound
	}
	return nil
}

// subtaskPageQuery is the statement, not yet run, that reads one page of
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
func subtaskPageQuery(db *gorm.DB, q subtaskQuery, page, perPage int, fromEnd bool) *gorm.DB {
	offset := (page - 1) * perPage
	count := db.Model(&models.SubtaskCount{}).Select("subtask_counts.subtasks AS n")
	ids := db.Table("(?) AS counts", count).Select(pagedColumns + ", counts.n AS total")
	if !fromEnd {
		forward := db.Model(&models.Subtask{}).Select("subtasks.id").
			Order("subtasks.name, subtasks.id").Limit(perPage).Offset(offset)
		ids = ids.Joins("CROSS JOIN LATERAL (?) AS page", forward)
	} else {
		// gorm's Limit and Offset take numbers only: these depend on the
		// count, so the ORDER BY carries them. perPage is the caller's
		// int, offset a bind parameter.
		fromEnd := db.Model(&models.Subtask{}).Select("subtasks.id, subtasks.name").
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
	row := joinParents(db.Model(&models.Subtask{}).Select(subtaskColumns).Where("subtasks.id = page.id"), q).Limit(1)
	return ids.Joins("CROSS JOIN LATERAL (?) AS paged", row).Order("paged.name, paged.id")
}

// pagedColumns are subtaskColumns as the lateral sub-query "paged" names them.
const pagedColumns = "paged.id, paged.name, paged.is_complete, paged.details, " +
	"paged.task_name, paged.project_name, paged.account_slug, paged.account_name"

// finishPage makes the page of rows. A page without rows is past the end,
// or the first page of an empty list (which exists): a second statement
// tells which.
func finishPage(tx *gorm.DB, page, perPage int, rows []pagedRow) (SubtaskPage, error) {
	if len(rows) > 0 {
		return newPage(page, perPage, rows[0].Total, rows), nil
	}
	var n int64
	if err := tx.Model(&models.SubtaskCount{}).Select("coalesce(sum(subtasks), 0)").Scan(&n).Error; err != nil {
		return SubtaskPage{}, fmt.Errorf("count subtasks: %w", err)
	}
	out := newPage(page, perPage, n, nil)
	if page > out.Pages {
		return out, ErrPageNotFound
	}
	return out, nil
}

func newPage(page, perPage int, total int64, rows []pagedRow) SubtaskPage {
	out := SubtaskPage{Page: page, Total: total, Pages: int((total + int64(perPage) - 1) / int64(perPage)), Rows: make([]models.SubtaskRow, len(rows))}
	if out.Pages == 0 {
		out.Pages = 1 // an empty list still has a first page
	}
	for i, r := range rows {
		out.Rows[i] = r.SubtaskRow
	}
	return out
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

// listAllTenants reads one page of the all-tenants list on tx, which must
// carry the explicit all-tenants scope.
func listAllTenants(tx *gorm.DB, page, perPage int) (SubtaskPage, error) {
	if err := checkPage(page, perPage); err != nil {
		return SubtaskPage{Page: page}, err
	}
	rows := make([]pagedRow, 0, perPage)
	query := fmt.Sprintf(allTenantsPage, perPage) // an int: nothing to escape
	err := tx.Raw(query, sql.Named("offset", int64(page-1)*int64(perPage))).Scan(&rows).Error
	if err != nil {
		return SubtaskPage{}, fmt.Errorf("read all-tenants page %d: %w", page, err)
	}
	return finishPage(tx, page, perPage, rows)
}
