package multidb

import (
	"context"
	"fmt"
	"testing"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/strategytest"
)

func tenantData(slug string, subtasks int) *strategy.TenantData {
	d := &strategy.TenantData{
		Account:  models.Account{Slug: slug, Name: "Account " + slug},
		Users:    []models.User{{Email: "a@" + slug, FirstName: "A", LastName: "B", Password: "x"}},
		Projects: []models.Project{{Name: "p0"}, {Name: "p1"}},
		Tasks:    []strategy.TaskData{{Task: models.Task{Name: "t0"}, Project: 1}, {Task: models.Task{Name: "t1"}, Project: 0}},
	}
	for i := range subtasks {
		d.Subtasks = append(d.Subtasks, strategy.SubtaskData{Subtask: models.Subtask{Name: fmt.Sprintf("s%d", i)}, Task: i % 2})
	}
	return d
}

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

// idsOf lists d's ids: the account's, then each table's in row order.
func idsOf(d *strategy.TenantData) string {
	var users, projects, tasks, subtasks []int64
	for _, u := range d.Users {
		users = append(users, u.ID)
	}
	for _, p := range d.Projects {
		projects = append(projects, p.ID)
	}
	for _, t := range d.Tasks {
		tasks = append(tasks, t.ID)
	}
	for _, s := range d.Subtasks {
		subtasks = append(subtasks, s.ID)
	}
	return fmt.Sprintf("account %d, users %v, projects %v, tasks %v, subtasks %v", d.Account.ID, users, projects, tasks, subtasks)
}

// checkForeignKeys checks that d's foreign keys name the parents its
// indexes do. multidb's tasks and subtasks have no account_id (it is 0 in
// the data); users and projects carry the account's.
func checkForeignKeys(t *testing.T, d *strategy.TenantData) {
	t.Helper()
	for _, u := range d.Users {
		if u.AccountID != d.Account.ID {
			t.Errorf("%s: user %d has account_id %d, want %d", d.Account.Slug, u.ID, u.AccountID, d.Account.ID)
		}
	}
	for _, p := range d.Projects {
		if p.AccountID != d.Account.ID {
			t.Errorf("%s: project %d has account_id %d, want %d", d.Account.Slug, p.ID, p.AccountID, d.Account.ID)
		}
	}
	const wantAccount = models.TenantID(0)
	for _, tk := range d.Tasks {
		if tk.ProjectID != d.Projects[tk.Project].ID || tk.AccountID != wantAccount {
			t.Errorf("%s: task %d has project_id %d, account_id %d; want %d, %d", d.Account.Slug, tk.ID, tk.ProjectID, tk.AccountID, d.Projects[tk.Project].ID, wantAccount)
		}
	}
	for _, s := range d.Subtasks {
		if s.TaskID != d.Tasks[s.Task].ID || s.AccountID != wantAccount {
			t.Errorf("%s: subtask %d has task_id %d, account_id %d; want %d, %d", d.Account.Slug, s.ID, s.TaskID, s.AccountID, d.Tasks[s.Task].ID, wantAccount)
		}
	}
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
	for i, d := range []*strategy.TenantData{tenantData("tenant-2", 4), tenantData("tenant-1", 3)} {
		if err := admin.AssignIDs(ctx, d); err != nil {
			t.Fatalf("AssignIDs(%s): %v", d.Account.Slug, err)
		}
		if got := idsOf(d); got != want[i] {
			t.Errorf("AssignIDs(%s) gave %s, want %s", d.Account.Slug, got, want[i])
		}
		checkForeignKeys(t, d)
	}
	bad := tenantData("tenant-0", 1)
	bad.Subtasks[0].Task = 7
	if err := admin.AssignIDs(ctx, bad); err == nil {
		t.Error("AssignIDs with a subtask under task index 7 of 2: no error")
	}
}
