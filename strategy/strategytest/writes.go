package strategytest

import (
	"context"

	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
)

// AddTenantWithTasks creates slug with one project, tasks tasks named
// "<slug> task <i>" and perTask subtasks under each, named "<slug> subtask
// <i>.<j>", and returns the account as the server sees it.
func AddTenantWithTasks(t testing.TB, admin strategy.Admin, s strategy.Strategy, slug string, tasks, perTask int) models.Account {
	t.Helper()
	ctx := context.Background()
	err := admin.CreateTenant(ctx, models.Account{Slug: slug, Name: "Account " + slug}, true, func(tx *gorm.DB) error {
		p := models.Project{Name: slug + " project"}
		if err := tx.Create(&p).Error; err != nil {
			return err
		}
		for i := range tasks {
			task := models.Task{ProjectID: p.ID, Name: fmt.Sprintf("%s task %d", slug, i)}
			if err := tx.Create(&task).Error; err != nil {
				return err
			}
			for j := range perTask {
				if err := tx.Create(&models.Subtask{TaskID: task.ID, Name: fmt.Sprintf("%s subtask %d.%d", slug, i, j)}).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("CreateTenant(%s): %v", slug, err)
	}
	acct, err := s.TenantBySlug(ctx, slug)
	if err != nil {
		t.Fatalf("TenantBySlug(%s): %v", slug, err)
	}
	return acct
}

// tenantState is everything a write could change in the database that
// holds tenant slug's rows (every tenant's, in singleschema), read as the
// admin: to show that a refused write changed nothing, anywhere.
func tenantState(t testing.TB, h Harness, opts strategy.Options, slug string) string {
	t.Helper()
	db := h.TenantDB(t, opts, slug)
	var parts []string
	for _, q := range []string{
		`SELECT coalesce(string_agg(concat_ws('|', id, task_id, name, details, is_complete), E'\n' ORDER BY id), '') FROM subtasks`,
		`SELECT coalesce(string_agg(concat_ws('|', id, project_id, name, details, is_complete), E'\n' ORDER BY id), '') FROM tasks`,
		`SELECT coalesce(string_agg(concat_ws('|', account_id, subtasks), E'\n' ORDER BY account_id), '') FROM subtask_counts`,
	} {
		parts = append(parts, Column[string](t, db, q)...)
	}
	return strings.Join(parts, "\n--\n")
}

// ids are the ids in table of the database (and schema) holding tenant
// slug's rows, that tenant's only.
func ids(t *testing.T, h Harness, opts strategy.Options, slug string, id models.TenantID, table string) []int64 {
	t.Helper()
	db := h.TenantDB(t, opts, slug)
	q := "SELECT id FROM " + table
	if hasAccountID(t, db) {
		q += fmt.Sprintf(" WHERE account_id = %d", id)
	}
	return Int64s(t, db, q+" ORDER BY id")
}

// foreignIDs are the ids of other's rows in table that mine has no row
// with: in multidb and multischema each tenant numbers its rows from 1,
// so an id both have names mine's own row in mine's tables.
func foreignIDs(t *testing.T, h Harness, opts strategy.Options, mine, other models.Account, table string) []int64 {
	t.Helper()
	own := ids(t, h, opts, mine.Slug, mine.ID, table)
	var out []int64
	for _, id := range ids(t, h, opts, other.Slug, other.ID, table) {
		if !slices.Contains(own, id) {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no %s id that %s lacks", other.Slug, table, mine.Slug)
	}
	return out
}

// testWritesInOwnTenant: a tenant creates, reads, edits, deletes its
// subtasks and completes its tasks; a version is refused once the row has
// moved on, also between concurrent writers; the counts the list trusts
// follow every write.
func testWritesInOwnTenant(t *testing.T, h Harness) {
	opts, admin, s := Deploy(t, h)
	a := AddTenantWithTasks(t, admin, s, "tenant-0", 2, 2)
	b := AddTenantWithTasks(t, admin, s, "tenant-1", 1, 1)
	ctx := TenantCtx(a)

	tasks, err := s.ListTasks(ctx, 10)
	if err != nil || len(tasks) != 2 || tasks[0].Name != "tenant-0 task 0" || tasks[0].ProjectName != "tenant-0 project" {
		t.Fatalf("ListTasks(tenant-0) = %+v, %v; want its 2 tasks in order, with their project", tasks, err)
	}
	if few, err := s.ListTasks(ctx, 1); err != nil || len(few) != 1 {
		t.Errorf("ListTasks(tenant-0, limit 1) = %+v, %v; want 1 task", few, err)
	}

	created, err := s.CreateSubtask(ctx, strategy.NewSubtask{TaskID: tasks[1].ID, Name: "new one", Details: "line 1\nline 2\ttab"})
	if err != nil {
		t.Fatalf("CreateSubtask: %v", err)
	}
	if created.ID <= 0 || created.TaskID != tasks[1].ID || created.Name != "new one" || created.IsComplete || created.Version == "" {
		t.Errorf("CreateSubtask = %+v", created)
	}
	checkTotals(t, h, opts, s, "create", a, b)
	got, err := s.GetSubtask(ctx, created.ID)
	if err != nil || got != created {
		t.Errorf("GetSubtask(%d) = %+v, %v; want %+v", created.ID, got, err, created)
	}
	page, err := s.ListSubtasks(ctx, 1, 10)
	if err != nil || !slices.ContainsFunc(page.Rows, func(r models.SubtaskRow) bool { return r.ID == created.ID && r.Name == "new one" }) {
		t.Errorf("ListSubtasks after create = %+v, %v; want the new subtask listed", page, err)
	}

	name, done := "renamed", true
	updated, err := s.UpdateSubtask(ctx, created.ID, created.Version, strategy.SubtaskChange{Name: &name, IsComplete: &done})
	if err != nil {
		t.Fatalf("UpdateSubtask: %v", err)
	}
	if updated.Name != name || !updated.IsComplete || updated.Details != created.Details || updated.Version == created.Version {
		t.Errorf("UpdateSubtask = %+v; want renamed, complete, details kept, a new version (was %q)", updated, created.Version)
	}
	if got, err := s.GetSubtask(ctx, created.ID); err != nil || got != updated {
		t.Errorf("GetSubtask after update = %+v, %v; want %+v", got, err, updated)
	}

	// The version read before the update is stale now: refused, and
	// nothing written.
	before := tenantState(t, h, opts, a.Slug)
	other := "lost update"
	if _, err := s.UpdateSubtask(ctx, created.ID, created.Version, strategy.SubtaskChange{Name: &other}); !errors.Is(err, strategy.ErrStale) {
		t.Errorf("UpdateSubtask with the old version: err %v, want ErrStale", err)
	}
	if err := s.DeleteSubtask(ctx, created.ID, created.Version); !errors.Is(err, strategy.ErrStale) {
		t.Errorf("DeleteSubtask with the old version: err %v, want ErrStale", err)
	}
	if after := tenantState(t, h, opts, a.Slug); after != before {
		t.Errorf("stale writes changed the database:\n%s\n---\n%s", before, after)
	}
	if same, err := s.UpdateSubtask(ctx, created.ID, updated.Version, strategy.SubtaskChange{}); err != nil || same != updated {
		t.Errorf("UpdateSubtask changing nothing = %+v, %v; want %+v", same, err, updated)
	}

	// Concurrent writers that read the same version: one wins, the others
	// are told it is stale, as the version is compared under the row's lock.
	const writers = 6
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := fmt.Sprintf("writer %d", i)
			_, errs[i] = s.UpdateSubtask(ctx, created.ID, updated.Version, strategy.SubtaskChange{Name: &n})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, strategy.ErrStale):
			t.Errorf("concurrent writer %d: %v, want nil or ErrStale", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent writers with one version succeeded, want 1: %v", won, writers, errs)
	}
	cur, err := s.GetSubtask(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteSubtask(ctx, created.ID, cur.Version); err != nil {
		t.Fatalf("DeleteSubtask: %v", err)
	}
	checkTotals(t, h, opts, s, "delete", a, b)
	if _, err := s.GetSubtask(ctx, created.ID); !errors.Is(err, strategy.ErrNotFound) {
		t.Errorf("GetSubtask after delete: err %v, want ErrNotFound", err)
	}
	if err := s.DeleteSubtask(ctx, created.ID, ""); !errors.Is(err, strategy.ErrNotFound) {
		t.Errorf("DeleteSubtask twice: err %v, want ErrNotFound", err)
	}
	// Without a version, a delete is unconditional.
	seeded := ids(t, h, opts, a.Slug, a.ID, "subtasks")[0]
	if err := s.DeleteSubtask(ctx, seeded, ""); err != nil {
		t.Errorf("DeleteSubtask(%d) without a version: %v", seeded, err)
	}
	checkTotals(t, h, opts, s, "delete without a version", a, b)

	for range 2 { // completing a complete task is no error
		task, err := s.CompleteTask(ctx, tasks[0].ID)
		if err != nil || task.ID != tasks[0].ID || !task.IsComplete {
			t.Errorf("CompleteTask(%d) = %+v, %v", tasks[0].ID, task, err)
		}
	}
	if now, err := s.ListTasks(ctx, 10); err != nil || !now[0].IsComplete || now[1].IsComplete {
		t.Errorf("ListTasks after CompleteTask = %+v, %v; want the first complete only", now, err)
	}
}

// testWritesNeverReachAnotherTenant: every write aimed from tenant-0 at a
// row of tenant-1 (an id tenant-0 has no row with) is not found, or for a
// new subtask an invalid task, and changes nothing in either tenant. It
// goes red if a write ran outside the tenant's scope: checked by running
// it with singleschema's gorm scope and row-level security both turned
// off, and in multidb and multischema with the transaction routed to
// tenant-1's database or schema.
func testWritesNeverReachAnotherTenant(t *testing.T, h Harness) {
	opts, admin, s := Deploy(t, h)
	a := AddTenantWithTasks(t, admin, s, "tenant-0", 1, 2)
	b := AddTenantWithTasks(t, admin, s, "tenant-1", 3, 2)
	ctx := TenantCtx(a)
	theirSubtasks := foreignIDs(t, h, opts, a, b, "subtasks")
	theirTasks := foreignIDs(t, h, opts, a, b, "tasks")
	theirs, err := s.GetSubtask(TenantCtx(b), theirSubtasks[0])
	if err != nil {
		t.Fatalf("tenant-1 reads its own subtask %d: %v", theirSubtasks[0], err)
	}

	before := tenantState(t, h, opts, a.Slug) + "\n==\n" + tenantState(t, h, opts, b.Slug)
	name, done := "taken over", true
	for _, tc := range []struct {
		what  string
		write func() error
		want  error
	}{
		{"get", func() error { _, err := s.GetSubtask(ctx, theirs.ID); return err }, strategy.ErrNotFound},
		{"update with their version", func() error {
			_, err := s.UpdateSubtask(ctx, theirs.ID, theirs.Version, strategy.SubtaskChange{Name: &name, IsComplete: &done})
			return err
		}, strategy.ErrNotFound},
		{"delete with their version", func() error { return s.DeleteSubtask(ctx, theirs.ID, theirs.Version) }, strategy.ErrNotFound},
		{"delete without a version", func() error { return s.DeleteSubtask(ctx, theirs.ID, "") }, strategy.ErrNotFound},
		{"complete their task", func() error { _, err := s.CompleteTask(ctx, theirTasks[0]); return err }, strategy.ErrNotFound},
		{"create under their task", func() error {
			_, err := s.CreateSubtask(ctx, strategy.NewSubtask{TaskID: theirTasks[0], Name: name})
			return err
		}, strategy.ErrInvalid},
	} {
		err := tc.write()
		if !errors.Is(err, tc.want) {
			t.Errorf("tenant-0 %s of tenant-1's row: err %v, want %v", tc.what, err, tc.want)
		}
		var ve *strategy.ValidationError
		if tc.want == strategy.ErrInvalid && (!errors.As(err, &ve) || ve.Fields["task_id"] == "") {
			t.Errorf("tenant-0 %s: err %v, want a ValidationError on task_id", tc.what, err)
		}
	}
	// Every foreign id, not only the first.
	for _, id := range theirSubtasks {
		if err := s.DeleteSubtask(ctx, id, ""); !errors.Is(err, strategy.ErrNotFound) {
			t.Errorf("tenant-0 deletes tenant-1's subtask %d: err %v, want ErrNotFound", id, err)
		}
	}
	for _, id := range theirTasks {
		if _, err := s.CompleteTask(ctx, id); !errors.Is(err, strategy.ErrNotFound) {
			t.Errorf("tenant-0 completes tenant-1's task %d: err %v, want ErrNotFound", id, err)
		}
	}
	after := tenantState(t, h, opts, a.Slug) + "\n==\n" + tenantState(t, h, opts, b.Slug)
	if after != before {
		t.Errorf("writes aimed at another tenant changed the database:\n%s\n---\n%s", before, after)
	}
	if still, err := s.GetSubtask(TenantCtx(b), theirs.ID); err != nil || still != theirs {
		t.Errorf("tenant-1's subtask afterwards = %+v, %v; want %+v", still, err, theirs)
	}
	tasks, err := s.ListTasks(ctx, 100)
	if err != nil || len(tasks) != 1 || !strings.HasPrefix(tasks[0].Name, "tenant-0 ") {
		t.Errorf("ListTasks(tenant-0) = %+v, %v; want its one task only", tasks, err)
	}
	checkTotals(t, h, opts, s, "writes aimed at another tenant", a, b)
}

// testWritesRefuseBadInput: input that breaks a rule is a ValidationError
// naming the field, and writes nothing; without a tenant every write is
// ErrNoTenant.
func testWritesRefuseBadInput(t *testing.T, h Harness) {
	opts, admin, s := Deploy(t, h)
	a := AddTenantWithTasks(t, admin, s, "tenant-0", 1, 1)
	ctx := TenantCtx(a)
	task := ids(t, h, opts, a.Slug, a.ID, "tasks")[0]
	mine, err := s.GetSubtask(ctx, ids(t, h, opts, a.Slug, a.ID, "subtasks")[0])
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	long := strings.Repeat("é", strategy.MaxSubtaskName+1)
	before := tenantState(t, h, opts, a.Slug)
	for _, tc := range []struct {
		in    strategy.NewSubtask
		field string
	}{
		{strategy.NewSubtask{TaskID: task, Name: ""}, "name"},
		{strategy.NewSubtask{TaskID: task, Name: " \t "}, "name"},
		{strategy.NewSubtask{TaskID: task, Name: long}, "name"},
		{strategy.NewSubtask{TaskID: task, Name: "two\nlines"}, "name"},
		{strategy.NewSubtask{TaskID: task, Name: "bad \xff utf-8"}, "name"},
		{strategy.NewSubtask{TaskID: task, Name: "ok", Details: "nul \x00 byte"}, "details"},
		{strategy.NewSubtask{TaskID: task, Name: "ok", Details: strings.Repeat("x", strategy.MaxSubtaskDetails+1)}, "details"},
		{strategy.NewSubtask{TaskID: 0, Name: "ok"}, "task_id"},
		{strategy.NewSubtask{TaskID: -1, Name: "ok"}, "task_id"},
		{strategy.NewSubtask{TaskID: 1 << 62, Name: "ok"}, "task_id"},
	} {
		_, err := s.CreateSubtask(ctx, tc.in)
		var ve *strategy.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, strategy.ErrInvalid) || ve.Fields[tc.field] == "" {
			t.Errorf("CreateSubtask(%.60q) = %v; want a ValidationError on %s", fmt.Sprintf("%+v", tc.in), err, tc.field)
		}
	}
	for _, tc := range []struct {
		version string
		change  strategy.SubtaskChange
		field   string
	}{
		{mine.Version, strategy.SubtaskChange{Name: str("")}, "name"},
		{mine.Version, strategy.SubtaskChange{Name: str(long)}, "name"},
		{mine.Version, strategy.SubtaskChange{Details: str("\x00")}, "details"},
		{"", strategy.SubtaskChange{Name: str("fine")}, "version"},
	} {
		_, err := s.UpdateSubtask(ctx, mine.ID, tc.version, tc.change)
		var ve *strategy.ValidationError
		if !errors.As(err, &ve) || ve.Fields[tc.field] == "" {
			t.Errorf("UpdateSubtask(%q, %+v) = %v; want a ValidationError on %s", tc.version, tc.change, err, tc.field)
		}
	}
	for _, id := range []int64{0, -1, 1 << 62} {
		if _, err := s.GetSubtask(ctx, id); !errors.Is(err, strategy.ErrNotFound) {
			t.Errorf("GetSubtask(%d): err %v, want ErrNotFound", id, err)
		}
	}
	if after := tenantState(t, h, opts, a.Slug); after != before {
		t.Errorf("refused input changed the database:\n%s\n---\n%s", before, after)
	}
	// The longest name and details allowed are written whole.
	okName, okDetails := strings.Repeat("é", strategy.MaxSubtaskName), strings.Repeat("d", strategy.MaxSubtaskDetails)
	if st, err := s.CreateSubtask(ctx, strategy.NewSubtask{TaskID: task, Name: okName, Details: okDetails}); err != nil || st.Name != okName || st.Details != okDetails {
		t.Errorf("CreateSubtask at the limits: %v", err)
	}

	for _, c := range []context.Context{context.Background(), AllTenantsCtx()} {
		name := "x"
		for what, err := range map[string]error{
			"get":    func() error { _, err := s.GetSubtask(c, mine.ID); return err }(),
			"create": func() error { _, err := s.CreateSubtask(c, strategy.NewSubtask{TaskID: task, Name: name}); return err }(),
			"update": func() error {
				_, err := s.UpdateSubtask(c, mine.ID, mine.Version, strategy.SubtaskChange{Name: &name})
				return err
			}(),
			"delete":   s.DeleteSubtask(c, mine.ID, ""),
			"complete": func() error { _, err := s.CompleteTask(c, task); return err }(),
			"tasks":    func() error { _, err := s.ListTasks(c, 10); return err }(),
		} {
			if !errors.Is(err, strategy.ErrNoTenant) {
				t.Errorf("%s without a tenant: err %v, want ErrNoTenant", what, err)
			}
		}
	}
	if got, err := s.GetSubtask(ctx, mine.ID); err != nil || got != mine {
		t.Errorf("subtask after writes without a tenant = %+v, %v; want %+v", got, err, mine)
	}
}
