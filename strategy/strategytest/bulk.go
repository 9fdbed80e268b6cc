package strategytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"tenancy/models"
	"tenancy/strategy"
)

// TenantData is a tenant of two projects, two tasks and subtasks
// subtasks, parents named by index, for the load tests.
func TenantData(slug string, subtasks int) *strategy.TenantData {
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

// IDsOf lists d's ids: the account's, then each table's in row order.
func IDsOf(d *strategy.TenantData) string {
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

// CheckForeignKeys checks that d's foreign keys name the parents its
// indexes do; denormalised says tasks and subtasks carry account_id too
// (multidb's have none: 0 in the data).
func CheckForeignKeys(t testing.TB, d *strategy.TenantData, denormalised bool) {
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
	wantAccount := models.TenantID(0)
	if denormalised {
		wantAccount = d.Account.ID
	}
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

// DeployForLoad sets up a deployment and returns its admin and an admin
// connection to where tenant-0's rows go (see Harness.TenantDB). It opens no
// server side: a server's start-up check probes the policies with inserts
// that are refused, and that use up an id of each table on the way, while
// load tests count ids from a fresh setup.
func DeployForLoad(t testing.TB, h Harness) (strategy.Admin, *sql.DB) {
	t.Helper()
	opts := Options(t, h.Name)
	admin := OpenAdmin(t, h, opts)
	if _, err := admin.Setup(context.Background(), nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return admin, h.TenantDB(t, opts, "tenant-0")
}

// testFlushMakesAsyncCommitsDurable: Flush returns only once the
// asynchronous commits before it are on disk. Right after an asynchronous
// commit the WAL is usually not flushed yet, so a Flush that did nothing
// fails this.
func testFlushMakesAsyncCommitsDurable(t *testing.T, h Harness) {
	admin, probe := DeployForLoad(t, h)
	ctx := context.Background()
	for i := range 5 {
		if _, err := admin.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if err := admin.LoadTenant(ctx, TenantData("tenant-0", 50), true); err != nil {
			t.Fatal(err)
		}
		var written string
		if err := probe.QueryRow(`SELECT pg_current_wal_insert_lsn()::text`).Scan(&written); err != nil {
			t.Fatal(err)
		}
		if err := admin.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var durable bool
		if err := probe.QueryRow(`SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn`, written).Scan(&durable); err != nil {
			t.Fatal(err)
		}
		if !durable {
			t.Fatalf("round %d: after Flush the WAL is flushed only up to before %s", i, written)
		}
	}
}

// testLoadTenant: LoadTenant fills in ids and foreign keys from the
// parents' indexes, a cancelled context writes nothing, and a parent index
// that points nowhere is refused.
func testLoadTenant(t *testing.T, h Harness) {
	admin, probe := DeployForLoad(t, h)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := admin.LoadTenant(cancelled, TenantData("tenant-0", 10), true); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadTenant on a cancelled context: err = %v, want context.Canceled", err)
	}
	if n := Int64s(t, probe, `SELECT count(*) FROM accounts`); n[0] != 0 {
		t.Errorf("after a cancelled load: %d accounts, want 0", n[0])
	}

	d := TenantData("tenant-0", 10)
	if err := admin.LoadTenant(context.Background(), d, true); err != nil {
		t.Fatal(err)
	}
	// Each task's project, and each subtask's task, is the one its index
	// named.
	rows, err := probe.Query(`SELECT t.name, p.name FROM tasks t JOIN projects p ON p.id = t.project_id ORDER BY t.id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var task, project string
		if err := rows.Scan(&task, &project); err != nil {
			t.Fatal(err)
		}
		got = append(got, task+"->"+project)
	}
	rows.Close()
	if fmt.Sprint(got) != "[t0->p1 t1->p0]" {
		t.Errorf("tasks and their projects: %v, want [t0->p1 t1->p0]", got)
	}
	if wrong := Int64s(t, probe, `SELECT count(*) FROM subtasks s JOIN tasks t ON t.id = s.task_id
		WHERE t.name <> 't' || (substr(s.name, 2)::int % 2)`); wrong[0] != 0 {
		t.Errorf("%d subtasks under the wrong task", wrong[0])
	}
	if d.Account.ID == 0 || d.Subtasks[9].ID == 0 || d.Subtasks[9].TaskID != d.Tasks[1].ID {
		t.Errorf("LoadTenant did not fill in ids: account %d, subtask 9 %+v", d.Account.ID, d.Subtasks[9].Subtask)
	}

	bad := TenantData("tenant-1", 1)
	bad.Subtasks[0].Task = 7
	if err := admin.LoadTenant(context.Background(), bad, true); err == nil {
		t.Error("LoadTenant with a subtask under task index 7 of 2: no error")
	}
}

// nextIDs returns, for each tenant table, the id an insert that leaves it
// to the table would get, and the highest id in the table. It uses the ids
// up: call it last.
func nextIDs(t *testing.T, db *sql.DB) (next, highest [5]int64) {
	t.Helper()
	for i, table := range strategy.DataTables() {
		err := db.QueryRow(fmt.Sprintf(`SELECT nextval(pg_get_serial_sequence('%s', 'id')), (SELECT coalesce(max(id), 0) FROM %[1]s)`, table)).
			Scan(&next[i], &highest[i])
		if err != nil {
			t.Fatalf("next id of %s: %v", table, err)
		}
	}
	return next, highest
}

// testLoadTenantLeavesTheSequencesPastItsIDs: after LoadTenant an insert
// gets a fresh id, the one after the highest; and a load never moves a
// sequence back, even when it writes lower ids than the sequence has
// handed out (multidb after a reset).
func testLoadTenantLeavesTheSequencesPastItsIDs(t *testing.T, h Harness) {
	admin, probe := DeployForLoad(t, h)
	ctx := context.Background()
	if err := admin.LoadTenant(ctx, TenantData("tenant-0", 5), true); err != nil {
		t.Fatal(err)
	}
	next, highest := nextIDs(t, probe)
	for i, table := range strategy.DataTables() {
		if next[i] != highest[i]+1 {
			t.Errorf("after LoadTenant the next id of %s is %d, want %d", table, next[i], highest[i]+1)
		}
	}
	if _, err := admin.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.LoadTenant(ctx, TenantData("tenant-0", 5), true); err != nil {
		t.Fatal(err)
	}
	again, highest := nextIDs(t, probe)
	for i, table := range strategy.DataTables() {
		if again[i] <= highest[i] {
			t.Errorf("after Reset and LoadTenant the next id of %s is %d, want more than the highest, %d", table, again[i], highest[i])
		}
		if again[i] <= next[i] && !h.ResetDropsTables {
			t.Errorf("after Reset and LoadTenant the next id of %s is %d, want more than %d, handed out before", table, again[i], next[i])
		}
	}
}
