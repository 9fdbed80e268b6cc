package singleschema

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/strategytest"
)

// deployForLoad sets up a deployment and returns its admin and an admin
// connection to its database. It opens no server side: the server's
// start-up check probes the policies with inserts that are refused, and
// use up an id of each table on the way, while the tests here count ids
// from a fresh setup.
func deployForLoad(t *testing.T) (*Admin, *sql.DB) {
	t.Helper()
	opts := strategytest.Options(t, strategy.SingleSchema)
	admin, err := NewAdmin(opts)
	if err != nil {
		t.Fatalf("NewAdmin: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Setup(context.Background(), nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return admin, pgtest.Admin(t, opts.Database)
}

// AssignIDs numbers everything in the order of the calls, from 1 in a
// fresh database. (What multidb gives is in its own tests.)
func TestAssignIDs(t *testing.T) {
	t.Parallel()
	want := []string{ // for tenant-2, then tenant-1, assigned in that order
		"account 1, users [1], projects [1 2], tasks [1 2], subtasks [1 2 3 4]",
		"account 2, users [2], projects [3 4], tasks [3 4], subtasks [5 6 7]",
	}
	admin, _ := deployForLoad(t)
	ctx := context.Background()
	for i, d := range []*strategy.TenantData{strategytest.TenantData("tenant-2", 4), strategytest.TenantData("tenant-1", 3)} {
		if err := admin.AssignIDs(ctx, d); err != nil {
			t.Fatalf("AssignIDs(%s): %v", d.Account.Slug, err)
		}
		if got := strategytest.IDsOf(d); got != want[i] {
			t.Errorf("AssignIDs(%s) gave %s, want %s", d.Account.Slug, got, want[i])
		}
		strategytest.CheckForeignKeys(t, d, true)
	}
	bad := strategytest.TenantData("tenant-0", 1)
	bad.Subtasks[0].Task = 7
	if err := admin.AssignIDs(ctx, bad); err == nil {
		t.Error("AssignIDs with a subtask under task index 7 of 2: no error")
	}
}

// nextIDs returns, for each tenant table, the id an insert that leaves it
// to the table would get, and the highest id in the table. It uses the ids
// up: call it last.
func nextIDs(t *testing.T, db *sql.DB) (next, highest [5]int64) {
	t.Helper()
	for i, table := range tenantTables {
		err := db.QueryRow(fmt.Sprintf(`SELECT nextval(pg_get_serial_sequence('%s', 'id')), (SELECT coalesce(max(id), 0) FROM %[1]s)`, table)).
			Scan(&next[i], &highest[i])
		if err != nil {
			t.Fatalf("next id of %s: %v", table, err)
		}
	}
	return next, highest
}

// bulkLoad sends ds to BulkLoad in order.
func bulkLoad(t *testing.T, admin *Admin, commit bool, ds ...*strategy.TenantData) {
	t.Helper()
	ch := make(chan *strategy.TenantData, len(ds))
	for _, d := range ds {
		ch <- d
	}
	close(ch)
	if err := admin.BulkLoad(context.Background(), ch, commit, func(*strategy.TenantData) {}); err != nil {
		t.Fatalf("BulkLoad: %v", err)
	}
}

// BulkLoad gives ids in the order the accounts arrive, following on from
// the sequences; it moves them past its ids when it commits, and leaves
// them alone when it rolls back.
func TestBulkLoadIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, admin *Admin, db *sql.DB)
		want    []string // for tenant-1, then tenant-0, sent in that order
	}{
		{
			name: "fresh database",
			want: []string{
				"account 1, users [1], projects [1 2], tasks [1 2], subtasks [1 2 3]",
				"account 2, users [2], projects [3 4], tasks [3 4], subtasks [4 5]",
			},
		},
		{
			name: "after a load that was rolled back",
			prepare: func(t *testing.T, admin *Admin, _ *sql.DB) {
				bulkLoad(t, admin, false, strategytest.TenantData("tenant-5", 9))
			},
			want: []string{
				"account 1, users [1], projects [1 2], tasks [1 2], subtasks [1 2 3]",
				"account 2, users [2], projects [3 4], tasks [3 4], subtasks [4 5]",
			},
		},
		{
			name: "after a reset, which keeps the sequences going",
			prepare: func(t *testing.T, admin *Admin, _ *sql.DB) {
				bulkLoad(t, admin, true, strategytest.TenantData("tenant-5", 9))
				if _, err := admin.Reset(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{
				"account 2, users [2], projects [3 4], tasks [3 4], subtasks [10 11 12]",
				"account 3, users [3], projects [5 6], tasks [5 6], subtasks [13 14]",
			},
		},
		{
			name: "sequence restarted at 100, not yet used",
			prepare: func(t *testing.T, _ *Admin, db *sql.DB) {
				if _, err := db.Exec(`ALTER TABLE subtasks ALTER COLUMN id RESTART WITH 100`); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{
				"account 1, users [1], projects [1 2], tasks [1 2], subtasks [100 101 102]",
				"account 2, users [2], projects [3 4], tasks [3 4], subtasks [103 104]",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			admin, db := deployForLoad(t)
			if tt.prepare != nil {
				tt.prepare(t, admin, db)
			}
			ds := []*strategy.TenantData{strategytest.TenantData("tenant-1", 3), strategytest.TenantData("tenant-0", 2)}
			bulkLoad(t, admin, true, ds...)
			for i, d := range ds {
				if got := strategytest.IDsOf(d); got != tt.want[i] {
					t.Errorf("BulkLoad gave %s %s, want %s", d.Account.Slug, got, tt.want[i])
				}
				strategytest.CheckForeignKeys(t, d, true)
			}
			next, highest := nextIDs(t, db)
			for i, table := range tenantTables {
				if next[i] != highest[i]+1 {
					t.Errorf("after BulkLoad the next id of %s is %d, want %d", table, next[i], highest[i]+1)
				}
			}
		})
	}
}
