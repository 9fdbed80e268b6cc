package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/models"
)

func tenantData(slug string, subtasks int) *TenantData {
	d := &TenantData{
		Account:  models.Account{Slug: slug, Name: "Account " + slug},
		Users:    []models.User{{Email: "a@" + slug, FirstName: "A", LastName: "B", Password: "x"}},
		Projects: []models.Project{{Name: "p0"}, {Name: "p1"}},
		Tasks:    []TaskData{{Task: models.Task{Name: "t0"}, Project: 1}, {Task: models.Task{Name: "t1"}, Project: 0}},
	}
	for i := range subtasks {
		d.Subtasks = append(d.Subtasks, SubtaskData{Subtask: models.Subtask{Name: fmt.Sprintf("s%d", i)}, Task: i % 2})
	}
	return d
}

// deployForLoad sets up a deployment and returns its admin and an admin
// connection to the database that tenant-0's rows go to.
func deployForLoad(t *testing.T, strategyName string) (Admin, *sql.DB) {
	t.Helper()
	opts, admin, _ := deploy(t, strategyName)
	db := opts.Database
	if strategyName == MultiDB {
		db = opts.TenantDatabase(0)
	}
	return admin, pgtest.Admin(t, db)
}

// Flush must return only once the asynchronous commits before it are on
// disk. Right after an asynchronous commit the WAL is usually not flushed
// yet, so a Flush that did nothing fails this.
func TestFlushMakesAsyncCommitsDurable(t *testing.T) {
	t.Parallel()
	for _, name := range []string{SingleSchema, MultiDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			admin, probe := deployForLoad(t, name)
			ctx := context.Background()
			for i := range 5 {
				if _, err := admin.Reset(ctx); err != nil {
					t.Fatal(err)
				}
				if err := admin.LoadTenant(ctx, tenantData("tenant-0", 50), true); err != nil {
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
		})
	}
}

// LoadTenant fills in ids and foreign keys from the parents' indexes, and a
// cancelled context writes nothing.
func TestLoadTenant(t *testing.T) {
	t.Parallel()
	for _, name := range []string{SingleSchema, MultiDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			admin, probe := deployForLoad(t, name)

			cancelled, cancel := context.WithCancel(context.Background())
			cancel()
			if err := admin.LoadTenant(cancelled, tenantData("tenant-0", 10), true); !errors.Is(err, context.Canceled) {
				t.Errorf("LoadTenant on a cancelled context: err = %v, want context.Canceled", err)
			}
			var n int
			if err := probe.QueryRow(`SELECT count(*) FROM accounts`).Scan(&n); err != nil || n != 0 {
				t.Errorf("after a cancelled load: %d accounts (err %v), want 0", n, err)
			}

			d := tenantData("tenant-0", 10)
			if err := admin.LoadTenant(context.Background(), d, true); err != nil {
				t.Fatal(err)
			}
			// Each task's project, and each subtask's task, is the one its
			// index named.
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
			var wrong int
			if err := probe.QueryRow(`SELECT count(*) FROM subtasks s JOIN tasks t ON t.id = s.task_id
				WHERE t.name <> 't' || (substr(s.name, 2)::int % 2)`).Scan(&wrong); err != nil || wrong != 0 {
				t.Errorf("%d subtasks under the wrong task (err %v)", wrong, err)
			}
			if d.Account.ID == 0 || d.Subtasks[9].ID == 0 || d.Subtasks[9].TaskID != d.Tasks[1].ID {
				t.Errorf("LoadTenant did not fill in ids: account %d, subtask 9 %+v", d.Account.ID, d.Subtasks[9].Subtask)
			}

			bad := tenantData("tenant-1", 1)
			bad.Subtasks[0].Task = 7
			if err := admin.LoadTenant(context.Background(), bad, true); err == nil {
				t.Error("LoadTenant with a subtask under task index 7 of 2: no error")
			}
		})
	}
}
