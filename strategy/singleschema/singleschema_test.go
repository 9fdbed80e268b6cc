package singleschema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/strategytest"
)

// twoTenants is a singleschema deployment with tenant A (3 subtasks) and
// tenant B (5 subtasks).
func twoTenants(t *testing.T) (strategy.Options, *Server, models.Account, models.Account) {
	t.Helper()
	opts, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 3)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 5)
	return opts, s.(*Server), a, b
}

func TestTenantScopeIsRequired(t *testing.T) {
	t.Parallel()
	_, s, a, _ := twoTenants(t)
	bare := context.Background() // a forgotten tenant
	tests := []struct {
		name string
		run  func(tx *gorm.DB) error
	}{
		{"Find", func(tx *gorm.DB) error { var v []models.Subtask; return tx.WithContext(bare).Find(&v).Error }},
		{"First", func(tx *gorm.DB) error { var v models.Task; return tx.WithContext(bare).First(&v).Error }},
		{"Count", func(tx *gorm.DB) error {
			var n int64
			return tx.WithContext(bare).Model(&models.User{}).Count(&n).Error
		}},
		{"Pluck", func(tx *gorm.DB) error {
			var v []string
			return tx.WithContext(bare).Model(&models.Project{}).Pluck("name", &v).Error
		}},
		{"Update", func(tx *gorm.DB) error {
			return tx.WithContext(bare).Model(&models.Subtask{}).Where("true").Update("is_complete", true).Error
		}},
		{"Delete", func(tx *gorm.DB) error { return tx.WithContext(bare).Where("true").Delete(&models.Subtask{}).Error }},
		{"Create", func(tx *gorm.DB) error { return tx.WithContext(bare).Create(&models.Project{Name: "x"}).Error }},
		{"Preload of a tenanted relation", func(tx *gorm.DB) error {
			var v []models.Project
			return tx.WithContext(bare).Preload("Tasks").Find(&v).Error
		}},
		{"Joins of a tenanted relation", func(tx *gorm.DB) error {
			var v []models.Subtask
			return tx.WithContext(bare).Joins("Task").Find(&v).Error
		}},
		{"all-tenants scope cannot write", func(tx *gorm.DB) error {
			return tx.WithContext(models.NewContextForAllTenants(bare)).Model(&models.Subtask{}).Where("true").Update("name", "x").Error
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Tx(strategytest.TenantCtx(a), tt.run)
			if !errors.Is(err, strategy.ErrNoTenantScope) {
				t.Errorf("%s without a tenant scope: err = %v, want ErrNoTenantScope", tt.name, err)
			}
		})
	}
}

// TestTenantScopeFilters runs the scope on the admin role, which as a
// superuser bypasses row-level security: whatever isolation is seen here is
// the scope's own, not the policies'.
func TestTenantScopeFilters(t *testing.T) {
	t.Parallel()
	opts, _, a, b := twoTenants(t)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: pgtest.Admin(t, opts.Database)}), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := EnforceTenantScope(db); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []models.Account{a, b} {
		ctx := strategytest.TenantCtx(tenant)
		var subs []models.Subtask
		if err := db.WithContext(ctx).Find(&subs).Error; err != nil {
			t.Fatalf("Find subtasks as %s: %v", tenant.Slug, err)
		}
		var joined []models.Subtask
		if err := db.WithContext(ctx).Joins("Task").Find(&joined).Error; err != nil {
			t.Fatalf("Joins(Task) as %s: %v", tenant.Slug, err)
		}
		var projects []models.Project
		if err := db.WithContext(ctx).Preload("Tasks.Subtasks").Find(&projects).Error; err != nil {
			t.Fatalf("Preload as %s: %v", tenant.Slug, err)
		}
		want := map[models.Account]int{a: 3, b: 5}[tenant]
		if len(subs) != want || len(joined) != want {
			t.Errorf("as %s: Find got %d subtasks, Joins got %d, want %d", tenant.Slug, len(subs), len(joined), want)
		}
		for _, s := range append(subs, joined...) {
			if s.AccountID != tenant.ID || !strings.HasPrefix(s.Name, tenant.Slug+" ") {
				t.Errorf("as %s: got subtask %q of account %d", tenant.Slug, s.Name, s.AccountID)
			}
		}
		for _, s := range joined {
			if s.Task == nil || s.Task.AccountID != tenant.ID {
				t.Errorf("as %s: subtask %d joined task %+v", tenant.Slug, s.ID, s.Task)
			}
		}
		if len(projects) != 1 || len(projects[0].Tasks) != 1 || len(projects[0].Tasks[0].Subtasks) != want {
			t.Errorf("as %s: Preload got %+v, want 1 project, 1 task, %d subtasks", tenant.Slug, projects, want)
		}

		// A scoped update touches only the tenant's rows.
		res := db.WithContext(ctx).Model(&models.Subtask{}).Where("true").Update("details", "touched by "+tenant.Slug)
		if res.Error != nil || res.RowsAffected != int64(want) {
			t.Errorf("scoped Update as %s: affected %d (err %v), want %d", tenant.Slug, res.RowsAffected, res.Error, want)
		}
	}
}

func TestCreateClaimsRowsForTheTenant(t *testing.T) {
	t.Parallel()
	_, s, a, b := twoTenants(t)
	err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
		return tx.Create(&models.Project{Name: "stolen", AccountID: b.ID}).Error
	})
	if !errors.Is(err, strategy.ErrCrossTenantWrite) {
		t.Errorf("Create with another tenant's account_id: err = %v, want ErrCrossTenantWrite", err)
	}
	var p models.Project
	err = s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error { return tx.Create(&p).Error })
	if err != nil || p.AccountID != a.ID {
		t.Errorf("Create without account_id as %s: account_id = %d, err = %v; want %d, nil", a.Slug, p.AccountID, err, a.ID)
	}
}

// TestRowLevelSecurityWithoutScope leaves the gorm scope out entirely (raw
// SQL) and checks that the policies alone keep tenant A to its rows.
func TestRowLevelSecurityWithoutScope(t *testing.T) {
	t.Parallel()
	opts, s, a, b := twoTenants(t)
	leaks := func(s *Server) (seen map[int64]int, err error) {
		seen = map[int64]int{}
		err = s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
			for _, table := range []string{"users", "projects", "tasks", "subtasks"} {
				var ids []int64
				if err := tx.Raw("SELECT account_id FROM " + table).Scan(&ids).Error; err != nil {
					return err
				}
				for _, id := range ids {
					seen[id]++
				}
			}
			var accounts []int64
			if err := tx.Raw("SELECT id FROM accounts").Scan(&accounts).Error; err != nil {
				return err
			}
			for _, id := range accounts {
				seen[id]++
			}
			return nil
		})
		return seen, err
	}
	seen, err := leaks(s)
	if err != nil {
		t.Fatal(err)
	}
	if seen[int64(b.ID)] != 0 || seen[int64(a.ID)] == 0 {
		t.Fatalf("raw SELECTs as %s saw rows per account %v, want only account %d", a.Slug, seen, a.ID)
	}

	writes := []struct {
		name, sql string
		args      []any
	}{
		{"UPDATE", "UPDATE subtasks SET name = 'hijacked' WHERE account_id = ?", []any{b.ID}},
		{"DELETE", "DELETE FROM subtasks WHERE account_id = ?", []any{b.ID}},
		{"UPDATE moving a row to another tenant", "UPDATE projects SET account_id = ?", []any{b.ID}},
		{"INSERT", "INSERT INTO projects (account_id, name) VALUES (?, 'planted')", []any{b.ID}},
	}
	admin := pgtest.Admin(t, opts.Database)
	for _, w := range writes {
		var affected int64
		err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
			res := tx.Exec(w.sql, w.args...)
			affected = res.RowsAffected
			return res.Error
		})
		if err == nil && affected != 0 {
			t.Errorf("raw %s of tenant %s's rows as %s affected %d rows", w.name, b.Slug, a.Slug, affected)
		}
	}
	var bRows int
	if err := admin.QueryRow(`SELECT count(*) FROM subtasks WHERE account_id = $1 AND name LIKE 'tenant-1 subtask %'`, b.ID).Scan(&bRows); err != nil || bRows != 5 {
		t.Errorf("tenant B's subtasks after A's raw writes: %d (err %v), want 5 untouched", bRows, err)
	}
	var planted int
	if err := admin.QueryRow(`SELECT count(*) FROM projects WHERE account_id = $1 AND name IN ('planted')`, b.ID).Scan(&planted); err != nil || planted != 0 {
		t.Errorf("projects planted in B by A: %d (err %v), want 0", planted, err)
	}

	// Control: with the policy switched off the same raw read does leak, so
	// the check above is not passing by accident.
	if _, err := admin.Exec(`ALTER TABLE subtasks DISABLE ROW LEVEL SECURITY`); err != nil {
		t.Fatal(err)
	}
	seen, err = leaks(s)
	if err != nil {
		t.Fatal(err)
	}
	if seen[int64(b.ID)] == 0 {
		t.Errorf("control: with RLS disabled a raw SELECT saw no rows of %s; the leak check cannot detect a leak", b.Slug)
	}
}

// TestNoTenantSeesNothing connects as the app role without setting a
// tenant: it must read no row and write none (fail closed).
func TestNoTenantSeesNothing(t *testing.T) {
	t.Parallel()
	opts, s, a, _ := twoTenants(t)
	app := pgtest.Open(t, opts.AppUser, "", opts.Database)
	for _, table := range []string{"accounts", "users", "projects", "tasks", "subtasks"} {
		var n int
		if err := app.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("app role with no tenant: SELECT count(*) FROM %s = %d (err %v), want 0", table, n, err)
		}
	}
	_, err := app.Exec(`INSERT INTO projects (account_id, name) VALUES ($1, 'x')`, a.ID)
	if !pg.IsPgError(err, "42501") {
		t.Errorf("app role with no tenant: INSERT err = %v, want a row-level security violation (42501)", err)
	}
	// And through the strategy: a tenanted query with no tenant is refused
	// before it reaches the database.
	var subs []models.Subtask
	if err := s.app.WithContext(context.Background()).Find(&subs).Error; !errors.Is(err, strategy.ErrNoTenantScope) || len(subs) != 0 {
		t.Errorf("Find on the app root with no tenant: %d rows, err %v; want 0, ErrNoTenantScope", len(subs), err)
	}
	if err := s.Tx(context.Background(), func(*gorm.DB) error { return nil }); !errors.Is(err, strategy.ErrNoTenant) {
		t.Errorf("Tx without a tenant: err = %v, want ErrNoTenant", err)
	}
}

// TestTenantSettingEndsWithTransaction reuses the app pool's connections
// after tenant transactions and checks that none still carries a tenant. It
// goes red if setTenant made the setting session-level.
func TestTenantSettingEndsWithTransaction(t *testing.T) {
	t.Parallel()
	_, s, a, b := twoTenants(t)
	for i := 0; i < 20; i++ {
		tenant := []models.Account{a, b}[i%2]
		if err := s.Tx(strategytest.TenantCtx(tenant), func(tx *gorm.DB) error {
			var n int
			return tx.Raw("SELECT count(*) FROM subtasks").Scan(&n).Error
		}); err != nil {
			t.Fatal(err)
		}
	}
	sqlDB, err := s.app.DB()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < s.opts.Budget(); i++ { // every pooled connection
		conn, err := sqlDB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var setting sql.NullString
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT current_setting('app.tenant_id', true), (SELECT count(*) FROM subtasks)").Scan(&setting, &n); err != nil {
			t.Fatal(err)
		}
		if setting.String != "" || n != 0 {
			t.Errorf("pooled connection %d after tenant transactions: app.tenant_id = %q, sees %d subtasks; want empty, 0", i, setting.String, n)
		}
	}
}

func TestParentAndChildMustShareTenant(t *testing.T) {
	t.Parallel()
	opts, s, a, b := twoTenants(t)
	admin := pgtest.Admin(t, opts.Database) // superuser: row-level security does not apply
	var bTask, bProject int64
	if err := admin.QueryRow(`SELECT id, project_id FROM tasks WHERE account_id = $1`, b.ID).Scan(&bTask, &bProject); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, sql string }{
		{"subtask of A under B's task", fmt.Sprintf(`INSERT INTO subtasks (account_id, task_id, name) VALUES (%d, %d, 'x')`, a.ID, bTask)},
		{"task of A under B's project", fmt.Sprintf(`INSERT INTO tasks (account_id, project_id, name) VALUES (%d, %d, 'x')`, a.ID, bProject)},
		{"moving B's task to A", fmt.Sprintf(`UPDATE tasks SET account_id = %d WHERE id = %d`, a.ID, bTask)},
	}
	for _, tt := range tests {
		if _, err := admin.Exec(tt.sql); !pg.IsPgError(err, "23503") {
			t.Errorf("%s: err = %v, want a foreign-key violation (23503)", tt.name, err)
		}
	}
	// Through the app, in tenant A, the same attempts fail too, and for the
	// same reason: the scope and the policies let A write its own rows, and
	// only the composite foreign key sees that the parent is B's.
	for _, tt := range []struct {
		name  string
		child any
	}{
		{"subtask of A under B's task", &models.Subtask{TaskID: bTask, Name: "x"}},
		{"task of A under B's project", &models.Task{ProjectID: bProject, Name: "x"}},
	} {
		err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error { return tx.Create(tt.child).Error })
		if !pg.IsPgError(err, "23503") {
			t.Errorf("%s through the app: err = %v, want a foreign-key violation (23503)", tt.name, err)
		}
	}
}

func TestOpenRefusesRolesThatBypassRLS(t *testing.T) {
	t.Parallel()
	opts, _, _ := strategytest.Deploy(t, Harness())
	admin := pgtest.Admin(t, opts.Database)
	su, bypass := opts.Database+"_su", opts.Database+"_bypass"
	// Dropped with the deployment: pgtest drops the roles named after its database.
	for _, stmt := range []string{
		`CREATE ROLE "` + su + `" LOGIN SUPERUSER`,
		`CREATE ROLE "` + bypass + `" LOGIN BYPASSRLS`,
		// Setup lets only the app and reader roles connect.
		`GRANT CONNECT ON DATABASE "` + opts.Database + `" TO "` + bypass + `"`,
	} {
		if _, err := admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	app, reader := `"`+opts.AppUser+`"`, `"`+opts.ReaderUser+`"`
	tests := []struct {
		name, role  string
		setup, undo string
		want        string
	}{
		{"superuser", su, "", "", "superuser"},
		{"BYPASSRLS", bypass, "", "", "BYPASSRLS"},
		{"member of a BYPASSRLS role", opts.AppUser, "GRANT " + reader + " TO " + app, "REVOKE " + reader + " FROM " + app, "member of " + opts.ReaderUser},
		{"member of a superuser role", opts.AppUser, `GRANT "` + su + `" TO ` + app, `REVOKE "` + su + `" FROM ` + app, "member of " + su},
		{"owner of a tenanted table", opts.AppUser, "ALTER TABLE subtasks OWNER TO " + app, "ALTER TABLE subtasks OWNER TO CURRENT_USER; GRANT SELECT, DELETE ON subtasks TO " + app +
			"; GRANT INSERT (account_id, task_id, name, is_complete, details), UPDATE (account_id, task_id, name, is_complete, details) ON subtasks TO " + app, "owns"},
		{"reader without BYPASSRLS", opts.AppUser, "ALTER ROLE " + reader + " NOBYPASSRLS", "ALTER ROLE " + reader + " BYPASSRLS", "lacks BYPASSRLS"},
		{"reader that may write", opts.AppUser, "GRANT DELETE ON subtasks TO " + reader, "REVOKE DELETE ON subtasks FROM " + reader, "may DELETE on subtasks"},
		{"reader not read-only", opts.AppUser, "ALTER ROLE " + reader + " SET default_transaction_read_only = off", "ALTER ROLE " + reader + " SET default_transaction_read_only = on", "not read-only"},
		{"CREATEROLE", opts.AppUser, "ALTER ROLE " + app + " CREATEROLE", "ALTER ROLE " + app + " NOCREATEROLE", "CREATEROLE"},
		{"REPLICATION", opts.AppUser, "ALTER ROLE " + app + " REPLICATION", "ALTER ROLE " + app + " NOREPLICATION", "REPLICATION"},
		{"member of pg_read_server_files", opts.AppUser, "GRANT pg_read_server_files TO " + app, "REVOKE pg_read_server_files FROM " + app, "pg_read_server_files"},
		{"member of pg_write_all_data", opts.AppUser, "GRANT pg_write_all_data TO " + app, "REVOKE pg_write_all_data FROM " + app, "pg_write_all_data"},
		{"may create temporary objects", opts.AppUser, "GRANT TEMPORARY ON DATABASE " + pg.QuoteIdent(opts.Database) + " TO " + app, "REVOKE TEMPORARY ON DATABASE " + pg.QuoteIdent(opts.Database) + " FROM " + app, "temporary"},
		{"TRUNCATE on a tenanted table", opts.AppUser, "GRANT TRUNCATE ON tasks TO " + app, "REVOKE TRUNCATE ON tasks FROM " + app, "TRUNCATE"},
		{`"$user" on its search_path`, opts.AppUser, "ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(opts.Database) + ` SET search_path = "$user", public`,
			"ALTER ROLE " + app + " IN DATABASE " + pg.QuoteIdent(opts.Database) + " SET search_path = public", "$user"},
		{"reader with TEMPORARY", opts.AppUser, "GRANT TEMPORARY ON DATABASE " + pg.QuoteIdent(opts.Database) + " TO " + reader, "REVOKE TEMPORARY ON DATABASE " + pg.QuoteIdent(opts.Database) + " FROM " + reader, "temporary"},
		{"reader reads password hashes", opts.AppUser, "GRANT SELECT (password) ON users TO " + reader, "REVOKE SELECT (password) ON users FROM " + reader, "users.password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != "" {
				if _, err := admin.Exec(tt.setup); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if _, err := admin.Exec(tt.undo); err != nil {
						t.Fatal(err)
					}
				}()
			}
			o := opts
			o.AppUser = tt.role
			s, err := Open(context.Background(), o)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, strategy.ErrUnsafeRole) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open with %s: err = %v, want ErrUnsafeRole mentioning %q", tt.name, err, tt.want)
			}
		})
	}
	// Every change undone, the deployment opens again.
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open after undoing every change: %v", err)
	}
	s.Close()
}

func TestReaderRoleCannotWrite(t *testing.T) {
	t.Parallel()
	opts, _, a, _ := twoTenants(t)
	reader := pgtest.Open(t, opts.ReaderUser, "", opts.Database)
	var n int
	if err := reader.QueryRow(`SELECT count(*) FROM subtasks`).Scan(&n); err != nil || n != 8 {
		t.Errorf("reader: SELECT count(*) FROM subtasks = %d (err %v), want every tenant's 8", n, err)
	}
	for _, stmt := range []string{
		`DELETE FROM subtasks`,
		`UPDATE subtasks SET name = 'x'`,
		fmt.Sprintf(`INSERT INTO projects (account_id, name) VALUES (%d, 'x')`, a.ID),
	} {
		if _, err := reader.Exec(stmt); !pg.IsPgError(err, "25006") { // read-only transaction
			t.Errorf("reader: %s: err = %v, want read-only transaction (25006)", stmt, err)
		}
		// Even in a transaction it makes writable on purpose, grants stop it.
		tx, err := reader.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`SET TRANSACTION READ WRITE`); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(stmt); !pg.IsPgError(err, "42501") { // insufficient privilege
			t.Errorf("reader in a READ WRITE transaction: %s: err = %v, want permission denied (42501)", stmt, err)
		}
		tx.Rollback()
	}
}

func TestSingleSchemaAdminMustBeSuperuser(t *testing.T) {
	t.Parallel()
	opts := strategytest.Options(t, strategy.SingleSchema)
	weak := opts.Database + "_weak"
	t.Cleanup(func() { pgtest.Drop(t, "", weak) })
	if _, err := pgtest.Admin(t, "postgres").Exec(`CREATE ROLE "` + weak + `" LOGIN CREATEDB CREATEROLE`); err != nil {
		t.Fatal(err)
	}
	opts.AdminUser = weak
	a, err := NewAdmin(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Setup(context.Background(), nil); !errors.Is(err, strategy.ErrUnsafeRole) || !strings.Contains(err.Error(), "must be a superuser") {
		t.Errorf("Setup as a non-superuser admin: err = %v, want ErrUnsafeRole saying it must be a superuser", err)
	}
}

func TestAllTenantsViewIsReadOnlyAndComplete(t *testing.T) {
	t.Parallel()
	_, s, _, _ := twoTenants(t)
	all := models.NewContextForAllTenants(context.Background())
	page, err := s.ListSubtasks(all, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 8 || len(page.Rows) != 8 {
		t.Errorf("all-tenants list: total %d, %d rows; want 8, 8", page.Total, len(page.Rows))
	}
	err = s.reader.WithContext(all).Exec("DELETE FROM subtasks").Error
	if !pg.IsPgError(err, "25006") { // read-only transaction
		t.Errorf("DELETE as the all-tenants reader: err = %v, want read-only transaction (25006)", err)
	}
}

// TestAppRoleCannotChooseIDs: ids are shared across tenants in one
// schema, so a tenant that could insert an id of its choosing could make
// another tenant's next insert fail on a duplicate key, and learn from the
// error which ids exist. The identity columns are GENERATED ALWAYS and the
// app role has no rights on their sequences.
func TestAppRoleCannotChooseIDs(t *testing.T) {
	t.Parallel()
	opts, s, a, _ := twoTenants(t)
	app := pgtest.Open(t, opts.AppUser, "", opts.Database)
	var seq string
	if err := app.QueryRow(`SELECT pg_get_serial_sequence('subtasks', 'id')`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, stmt string
		code       string
	}{
		{"INSERT with an id", `INSERT INTO subtasks (id, account_id, task_id, name) SELECT 999999, account_id, id, 'x' FROM tasks`, "428C9"},
		{"INSERT OVERRIDING SYSTEM VALUE", `INSERT INTO subtasks (id, account_id, task_id, name) OVERRIDING SYSTEM VALUE SELECT 999999, account_id, id, 'x' FROM tasks`, "42501"},
		{"UPDATE of an id to its default", `UPDATE subtasks SET id = DEFAULT`, "42501"},
		{"UPDATE of an id", `UPDATE subtasks SET id = id + 1000000`, "428C9"},
		{"nextval", `SELECT nextval('` + seq + `')`, "42501"},
		{"setval", `SELECT setval('` + seq + `', 1000000)`, "42501"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := app.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.Exec(`SELECT set_config('app.tenant_id', $1, true)`, fmt.Sprint(a.ID)); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(tt.stmt); !pg.IsPgError(err, tt.code) {
				t.Errorf("%s as the app role: err = %v, want SQLSTATE %s", tt.stmt, err, tt.code)
			}
		})
	}
	// Through the strategy, an id on a new row is refused the same way,
	// and a row without one gets the database's.
	err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
		var task models.Task
		if err := tx.First(&task).Error; err != nil {
			return err
		}
		if err := tx.Create(&models.Subtask{ID: 999999, TaskID: task.ID, Name: "chosen id"}).Error; !pg.IsPgError(err, "428C9") {
			return fmt.Errorf("Create with an id: err = %v, want 428C9", err)
		}
		return errors.New("rolled back") // the failed statement ended the transaction
	})
	if err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Error(err)
	}
}

// TestLockedTableFailsFastNotForever: the app role may LOCK a table it can
// write (PostgreSQL ties LOCK to UPDATE, DELETE or TRUNCATE), so someone
// holding its password can block every tenant's reads. The runtime roles'
// lock_timeout makes those reads give up with ErrUnavailable (a 503)
// instead of queueing for the whole request.
func TestLockedTableFailsFastNotForever(t *testing.T) {
	t.Parallel()
	opts, s, _, b := twoTenants(t)
	attacker, err := pgtest.Open(t, opts.AppUser, "", opts.Database).Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Rollback()
	if _, err := attacker.Exec("LOCK TABLE subtasks IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatalf("LOCK TABLE as the app role: %v (if this is refused now, the mitigation below is moot: update the docs)", err)
	}
	ctx, cancel := context.WithTimeout(strategytest.TenantCtx(b), 30*time.Second)
	defer cancel()
	_, err = s.ListSubtasks(ctx, 1, 10)
	if !errors.Is(err, strategy.ErrUnavailable) || !pg.IsPgError(err, "55P03") {
		t.Errorf("another tenant's page while subtasks are locked: err = %v, want ErrUnavailable from lock_timeout (55P03)", err)
	}
}
