package singleschema

import (
	"context"
	"fmt"
	"time"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// openSubtasksSQL is the cross-tenant report in one statement, read as the
// all-tenants reader (read-only, BYPASSRLS: row-level security would show
// it no rows without a tenant, and it must see all of them). Every account
// is a row, with 0 when it has no open subtask. Both counts come from the
// partial index of open subtasks (subtasks_open, account_id and task_id):
// the open subtasks per account from it alone, the projects as the tasks
// with an open subtask (a semi-join merged in index order) counted per
// account. At 1,000 tenants (450,000 subtasks, half open) that took about
// 100 ms, where joining every open subtask to its task and grouping by
// project took 150 to 200 ms, and the same without the index 280 ms. The
// order is SortOpenSubtasks's: ties by slug in byte order.
const openSubtasksSQL = `
SELECT a.slug, a.name, coalesce(o.subtasks, 0)::bigint AS open_subtasks, coalesce(p.projects, 0)::bigint AS projects
FROM accounts a
LEFT JOIN (
    SELECT account_id, count(*) AS subtasks FROM subtasks WHERE NOT is_complete GROUP BY account_id
) o ON o.account_id = a.id
LEFT JOIN (
    SELECT t.account_id, count(DISTINCT t.project_id) AS projects
    FROM tasks t
    WHERE EXISTS (SELECT FROM subtasks s WHERE s.account_id = t.account_id AND s.task_id = t.id AND NOT s.is_complete)
    GROUP BY t.account_id
) p ON p.account_id = a.id
ORDER BY open_subtasks DESC, a.slug COLLATE "C"`

// ReportOpenSubtasks is the cross-tenant report: one statement, on the
// reader's pool, in a turn of it like an all-tenants page.
func (s *Server) ReportOpenSubtasks(ctx context.Context, o strategy.ReportOptions) (strategy.OpenSubtasksReport, error) {
	if !models.IsAllTenants(ctx) {
		return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report: %w", strategy.ErrNotAllTenants)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.TimeoutOrDefault())
	defer cancel()
	out := strategy.OpenSubtasksReport{Strategy: strategy.SingleSchema}
	err := s.readerTurns.Do(ctx, func() error {
		// One read-only statement, no transaction: tried once more after
		// a shard split as the tenants' reads are (see Server.tx).
		return pg.OnceMoreAfterSplit(func() error {
			out.Rows = out.Rows[:0]
			rows, err := s.pools[1].QueryContext(ctx, openSubtasksSQL)
			if err != nil {
				return pg.NotCommitted(err)
			}
			defer rows.Close()
			for rows.Next() {
				var r strategy.TenantOpenSubtasks
				if err := rows.Scan(&r.Slug, &r.Name, &r.OpenSubtasks, &r.ProjectsWithOpenSubtasks); err != nil {
					return pg.NotCommitted(err)
				}
				out.Rows = append(out.Rows, r)
			}
			return pg.NotCommitted(rows.Err())
		})
	})
	if err != nil {
		return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report, all tenants: %w", pg.Classify(err))
	}
	out.Elapsed = time.Since(start)
	return out, nil
}
