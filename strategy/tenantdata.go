package strategy

import (
	"fmt"
	"slices"

	"tenancy/models"
)

// TenantData is everything one tenant owns, ready to be bulk loaded. Rows
// refer to their parent by index: Admin.AssignIDs gives every row its id
// and fills in the foreign keys from them, and LoadTenant writes the rows
// with those ids.
type TenantData struct {
	Account  models.Account
	Users    []models.User
	Projects []models.Project
	Tasks    []TaskData
	Subtasks []SubtaskData
}

// TaskData is a task and the index of its project in TenantData.Projects.
type TaskData struct {
	models.Task
	Project int
}

// SubtaskData is a subtask and the index of its task in TenantData.Tasks.
type SubtaskData struct {
	models.Subtask
	Task int
}

// Rows is how many rows d holds, the account's own row included.
func (d *TenantData) Rows() int {
	return 1 + len(d.Users) + len(d.Projects) + len(d.Tasks) + len(d.Subtasks)
}

// HasIDs reports whether d's ids were given (AssignIDs or BulkLoad).
func (d *TenantData) HasIDs() bool { return d.Account.ID != 0 }

// Validate catches parent indexes that point nowhere, and ids given to
// some rows but not others, before any row is sent.
func (d *TenantData) Validate() error {
	for i, t := range d.Tasks {
		if t.Project < 0 || t.Project >= len(d.Projects) {
			return fmt.Errorf("task %d: project index %d out of range (%d projects)", i, t.Project, len(d.Projects))
		}
	}
	for i, s := range d.Subtasks {
		if s.Task < 0 || s.Task >= len(d.Tasks) {
			return fmt.Errorf("subtask %d: task index %d out of range (%d tasks)", i, s.Task, len(d.Tasks))
		}
	}
	if !d.HasIDs() {
		return nil
	}
	for t, ids := range d.IDs() {
		if i := slices.Index(ids, 0); i >= 0 {
			return fmt.Errorf("%s row %d has no id, though the account has id %d", DataTables()[t], i, d.Account.ID)
		}
	}
	return nil
}

// IDs lists the ids of d's rows by table, in DataTables order.
func (d *TenantData) IDs() [][]int64 {
	ids := make([][]int64, len(DataTables()))
	ids[0] = []int64{int64(d.Account.ID)}
	for _, u := range d.Users {
		ids[1] = append(ids[1], u.ID)
	}
	for _, p := range d.Projects {
		ids[2] = append(ids[2], p.ID)
	}
	for _, t := range d.Tasks {
		ids[3] = append(ids[3], t.ID)
	}
	for _, s := range d.Subtasks {
		ids[4] = append(ids[4], s.ID)
	}
	return ids
}

// DataTables are the tables of a tenant's data, parents first: the tables
// TenantData fills, in the order of IDs.
func DataTables() []string {
	return []string{"accounts", "users", "projects", "tasks", "subtasks"}
}
