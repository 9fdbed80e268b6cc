package singleschema

import (
	"context"
	"errors"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/strategytest"
)

// scopeOnly opens the admin (superuser) connection with the tenant scope:
// row-level security does not apply, so only the scope stands between the
// tenants in these tests.
func scopeOnly(t *testing.T, opts strategy.Options) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: pgtest.Admin(t, opts.Database)}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := EnforceTenantScope(db); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestTenantScopeHoles tries the ways around a naive scope: OR conditions,
// writes that move rows, upserts, maps, Unscoped and sub-queries.
func TestTenantScopeHoles(t *testing.T) {
	t.Parallel()
	opts, _, a, b := twoTenants(t)
	db := scopeOnly(t, opts)
	admin := pgtest.Admin(t, opts.Database)
	asA := db.WithContext(strategytest.TenantCtx(a))
	var aProject, bProject int64
	if err := admin.QueryRow(`SELECT (SELECT id FROM projects WHERE account_id = $1), (SELECT id FROM projects WHERE account_id = $2)`, a.ID, b.ID).Scan(&aProject, &bProject); err != nil {
		t.Fatal(err)
	}
	bRows := func() (n int) {
		if err := admin.QueryRow(`SELECT count(*) FROM subtasks WHERE account_id = $1 AND details = ''`, b.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("OR does not escape the tenant condition", func(t *testing.T) {
		var subs []models.Subtask
		if err := asA.Where("name LIKE ?", "tenant-1%").Or("false").Find(&subs).Error; err != nil || len(subs) != 0 {
			t.Errorf("Where(B's names).Or(false) as A: %d rows, err %v; want 0", len(subs), err)
		}
		res := asA.Model(&models.Subtask{}).Where("false").Or("true").Update("details", "or-update")
		if res.Error != nil || res.RowsAffected != 3 {
			t.Errorf("Update with Or(true) as A: affected %d, err %v; want A's 3", res.RowsAffected, res.Error)
		}
		if err := asA.Where("false").Or("true").Delete(&models.Subtask{}).Error; err != nil {
			t.Fatal(err)
		}
		if n := bRows(); n != 5 {
			t.Errorf("B's untouched subtasks after A's OR writes: %d, want 5", n)
		}
	})

	t.Run("OR after a newline, a tab or a parenthesis does not escape either", func(t *testing.T) {
		for _, cond := range []string{"name <> ?\nOR false", "name <> ?\tOR false", "(name <> ?)OR(false)", "name <> ? OR\nfalse"} {
			var tasks []models.Task
			if err := asA.Where(cond, "nobody").Find(&tasks).Error; err != nil || len(tasks) != 1 || tasks[0].AccountID != a.ID {
				t.Errorf("Where(%q) as A: %+v, err %v; want A's one task", cond, tasks, err)
			}
			if err := asA.Model(&models.Subtask{}).Where(cond, "nobody").Update("details", "or-update").Error; err != nil {
				t.Fatal(err)
			}
		}
		if n := bRows(); n != 5 {
			t.Errorf("B's untouched subtasks after A's OR writes: %d, want 5", n)
		}
	})

	t.Run("Table() on a tenanted table without its model is refused", func(t *testing.T) {
		for name, run := range map[string]func() error{
			"Find into maps": func() error { var m []map[string]any; return asA.Table("subtasks").Find(&m).Error },
			"Find into another struct": func() error {
				var rows []struct{ ID, AccountID int64 }
				return asA.Table("subtasks").Find(&rows).Error
			},
			"Count":                func() error { var n int64; return asA.Table("subtasks").Count(&n).Error },
			"qualified and quoted": func() error { var m []map[string]any; return asA.Table(`"public"."subtasks"`).Find(&m).Error },
			"with an alias":        func() error { var m []map[string]any; return asA.Table("subtasks AS s").Find(&m).Error },
			"Updates": func() error {
				return asA.Table("subtasks").Where("true").Updates(map[string]any{"details": "table-update"}).Error
			},
			"Delete": func() error { return asA.Table("subtasks").Where("true").Delete(map[string]any{}).Error },
			"Create for B": func() error {
				return asA.Table("projects").Create(map[string]any{"account_id": int64(b.ID), "name": "via Table"}).Error
			},
			"without a tenant": func() error { var m []map[string]any; return db.Table("users").Find(&m).Error },
		} {
			if err := run(); !errors.Is(err, strategy.ErrNoTenantScope) {
				t.Errorf("%s as A: err = %v, want ErrNoTenantScope", name, err)
			}
		}
		if n := bRows(); n != 5 {
			t.Errorf("B's untouched subtasks after Table() writes: %d, want 5", n)
		}
		var n int64
		if err := admin.QueryRow(`SELECT count(*) FROM projects WHERE name = 'via Table'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("projects created through Table(): %d (err %v), want 0", n, err)
		}
		// What stays allowed: the model's own table, and an explicit
		// all-tenants read.
		var tasks []models.Task
		if err := asA.Table("tasks").Find(&tasks).Error; err != nil || len(tasks) != 1 || tasks[0].AccountID != a.ID {
			t.Errorf("Table(tasks).Find(&[]Task) as A: %+v, err %v; want A's one task", tasks, err)
		}
		var all []map[string]any
		if err := db.WithContext(models.NewContextForAllTenants(context.Background())).Table("tasks").Find(&all).Error; err != nil || len(all) != 2 {
			t.Errorf("all-tenants Table(tasks) read: %d rows, err %v; want both tenants' 2", len(all), err)
		}
	})

	t.Run("updates cannot move rows to another tenant", func(t *testing.T) {
		for name, run := range map[string]func() error{
			"Update(account_id)": func() error { return asA.Model(&models.Project{}).Where("true").Update("account_id", b.ID).Error },
			"Updates(map)": func() error {
				return asA.Model(&models.Project{}).Where("true").Updates(map[string]any{"account_id": int64(b.ID)}).Error
			},
			"Updates(struct)": func() error {
				return asA.Model(&models.Project{}).Where("true").Updates(&models.Project{AccountID: b.ID}).Error
			},
			"Save of B's row": func() error { return asA.Save(&models.Project{ID: bProject, Name: "taken over"}).Error },
			"Create(map) for B": func() error {
				return asA.Model(&models.Project{}).Create(map[string]any{"account_id": int64(b.ID), "name": "m"}).Error
			},
			"Unscoped Create for B": func() error { return asA.Unscoped().Create(&models.Project{AccountID: b.ID, Name: "u"}).Error },
			"Create without tenant": func() error { return db.Create(&models.Project{AccountID: a.ID, Name: "n"}).Error },
			"Create account of B":   func() error { return asA.Create(&models.Account{ID: b.ID + 100, Slug: "x", Name: "x"}).Error },
			"Update with all-tenant": func() error {
				return db.WithContext(models.NewContextForAllTenants(context.Background())).Model(&models.Project{}).Where("true").Update("name", "all").Error
			},
		} {
			err := run()
			if !errors.Is(err, strategy.ErrCrossTenantWrite) && !errors.Is(err, strategy.ErrNoTenantScope) {
				t.Errorf("%s as A: err = %v, want ErrCrossTenantWrite or ErrNoTenantScope", name, err)
			}
		}
		owners := strategytest.Int64s(t, admin, `SELECT account_id FROM projects ORDER BY id`)
		if len(owners) != 2 || owners[0] != int64(a.ID) || owners[1] != int64(b.ID) {
			t.Errorf("projects' accounts after refused writes = %v, want [%d %d]", owners, a.ID, b.ID)
		}
	})

	t.Run("writes of the tenant's own rows still work", func(t *testing.T) {
		if err := asA.Save(&models.Project{ID: aProject, Name: "renamed"}).Error; err != nil {
			t.Errorf("Save of A's own project with no account_id: %v", err)
		}
		var acct int64
		if err := admin.QueryRow(`SELECT account_id FROM projects WHERE id = $1 AND name = 'renamed'`, aProject).Scan(&acct); err != nil || acct != int64(a.ID) {
			t.Errorf("A's saved project: account %d (err %v), want %d", acct, err, a.ID)
		}
		m := map[string]any{"name": "from a map"}
		if err := asA.Model(&models.Project{}).Create(m).Error; err != nil {
			t.Errorf("Create(map) without account_id as A: %v", err)
		}
		if err := admin.QueryRow(`SELECT account_id FROM projects WHERE name = 'from a map'`).Scan(&acct); err != nil || acct != int64(a.ID) {
			t.Errorf("map-created project: account %d (err %v), want %d", acct, err, a.ID)
		}
	})

	t.Run("a sub-query without a tenant matches nothing", func(t *testing.T) {
		var slugs []string
		sub := db.WithContext(context.Background()).Model(&models.Subtask{}).Select("account_id")
		db.WithContext(models.NewContextForAllTenants(context.Background())).Model(&models.Account{}).Where("id IN (?)", sub).Pluck("slug", &slugs)
		if len(slugs) != 0 {
			t.Errorf("accounts found through an unscoped sub-query: %v, want none", slugs)
		}
	})

	t.Run("accounts are scoped too", func(t *testing.T) {
		var accts []models.Account
		if err := asA.Find(&accts).Error; err != nil || len(accts) != 1 || accts[0].ID != a.ID {
			t.Errorf("Find accounts as A = %+v, err %v; want only A", accts, err)
		}
	})
}

// TestTenantScopeReachesRelations plants a row whose tenant differs from its
// parent's (possible only with the composite foreign key dropped) and checks
// that Preload and Joins scope the related table themselves.
func TestTenantScopeReachesRelations(t *testing.T) {
	t.Parallel()
	opts, _, a, b := twoTenants(t)
	db := scopeOnly(t, opts)
	admin := pgtest.Admin(t, opts.Database)
	if _, err := admin.Exec(`ALTER TABLE subtasks DROP CONSTRAINT subtasks_account_id_task_id_fkey`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`INSERT INTO subtasks (account_id, task_id, name) SELECT $1, id, 'planted' FROM tasks WHERE account_id = $2`, b.ID, a.ID); err != nil {
		t.Fatal(err)
	}

	var projects []models.Project
	if err := db.WithContext(strategytest.TenantCtx(a)).Preload("Tasks.Subtasks").Find(&projects).Error; err != nil {
		t.Fatal(err)
	}
	if len(projects) != 1 || len(projects[0].Tasks) != 1 || len(projects[0].Tasks[0].Subtasks) != 3 {
		t.Errorf("Preload as A: %+v; want A's 3 subtasks, not B's planted one", projects)
	}

	var subs []models.Subtask
	if err := db.WithContext(strategytest.TenantCtx(b)).Joins("Task").Where("subtasks.name = 'planted'").Find(&subs).Error; err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || (subs[0].Task != nil && subs[0].Task.ID != 0) {
		t.Errorf("Joins(Task) as B reached A's task: %+v", subs)
	}
}
