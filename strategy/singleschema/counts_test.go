package singleschema

import (
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy/strategytest"
)

// TestCountsFollowAMoveBetweenTenants: in one schema a subtask can move to
// another tenant (as the admin, with a task of that tenant's own, as the
// composite foreign key demands); the count triggers must move its count
// too. (The writes every strategy has are in the conformance suite.)
func TestCountsFollowAMoveBetweenTenants(t *testing.T) {
	t.Parallel()
	opts, s, a, b := twoTenants(t)
	db := pgtest.Admin(t, opts.Database)
	if _, err := db.Exec(`UPDATE subtasks SET account_id = $2, task_id = (SELECT id FROM tasks WHERE account_id = $2 LIMIT 1)
		WHERE id = (SELECT min(id) FROM subtasks WHERE account_id = $1)`, int64(a.ID), int64(b.ID)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tenant models.Account
		want   int64
	}{{a, 2}, {b, 6}} {
		page, err := s.ListSubtasks(strategytest.TenantCtx(tc.tenant), 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		n := strategytest.Int64s(t, db, `SELECT count(*) FROM subtasks WHERE account_id = $1`, int64(tc.tenant.ID))[0]
		if page.Total != tc.want || n != tc.want {
			t.Errorf("%s after the move: list total %d, count(*) %d; want %d", tc.tenant.Slug, page.Total, n, tc.want)
		}
	}
}
