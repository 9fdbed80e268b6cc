package multidb

import (
	"context"
	"testing"

	"tenancy/strategy"
	"tenancy/strategy/strategytest"
)

// deployForLoad sets up a deployment and returns its admin. It opens no
// server side, so the ids counted are those of a fresh setup.
func deployForLoad(t *testing.T) strategy.Admin {
	t.Helper()
	opts := strategytest.Options(t, strategy.MultiDB)
	admin := strategytest.OpenAdmin(t, Harness(), opts)
	if _, err := admin.Setup(context.Background(), nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return admin
}

// AssignIDs: multidb gives tenant-i the id i+1 and numbers its rows from 1.
// (singleschema's case of the old TestAssignIDs is singleschema's.)
func TestAssignIDs(t *testing.T) {
	t.Parallel()
	want := []string{ // for tenant-2, then tenant-1, assigned in that order
		"account 3, users [1], projects [1 2], tasks [1 2], subtasks [1 2 3 4]",
		"account 2, users [1], projects [1 2], tasks [1 2], subtasks [1 2 3]",
	}
	admin := deployForLoad(t)
	ctx := context.Background()
	for i, d := range []*strategy.TenantData{strategytest.TenantData("tenant-2", 4), strategytest.TenantData("tenant-1", 3)} {
		if err := admin.AssignIDs(ctx, d); err != nil {
			t.Fatalf("AssignIDs(%s): %v", d.Account.Slug, err)
		}
		if got := strategytest.IDsOf(d); got != want[i] {
			t.Errorf("AssignIDs(%s) gave %s, want %s", d.Account.Slug, got, want[i])
		}
		strategytest.CheckForeignKeys(t, d, false)
	}
	bad := strategytest.TenantData("tenant-0", 1)
	bad.Subtasks[0].Task = 7
	if err := admin.AssignIDs(ctx, bad); err == nil {
		t.Error("AssignIDs with a subtask under task index 7 of 2: no error")
	}
}
