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
// is a row, with 0 when it has no open subtask. The open subtasks are
// grouped by (account, project) first, which a hash aggregate does in one
// pass, and then by account; count(DISTINCT project_id) would sort every
// open subtask instead. The order is SortOpenSubtasks's: ties by slug in
// byte order.
const openSubtasksSQL = `
WITH open AS (
    SELECT s.account_id, t.project_id, count(*) AS subtasks
    FROM subtasks s
    JOIN tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    WHERE NOT s.is_complete
    GROUP BY s.account_id, t.project_id
)
SELECT a.slug, a.name, coalesce(sum(o.subtasks), 0)::bigint AS open_subtasks, count(o.project_id) AS projects
FROM accounts a
LEFT JOIN open o ON o.account_id = a.id
GROUP BY a.id
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
		rows, err := s.pools[1].QueryContext(ctx, openSubtasksSQL)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r strategy.TenantOpenSubtasks
			if err := rows.Scan(&r.Slug, &r.Name, &r.OpenSubtasks, &r.ProjectsWithOpenSubtasks); err != nil {
				return err
			}
			out.Rows = append(out.Rows, r)
		}
		return rows.Err()
	})
	if err != nil {
		return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report, all tenants: %w", pg.Classify(err))
	}
	out.Elapsed = time.Since(start)
	return out, nil
}
