package singleschema

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/strategytest"
)

// errUndo ends a test transaction whose writes must not stay.
var errUndo = errors.New("undo")

// TestScopeRefusesEveryPath: a gorm statement on a tenanted model with no
// tenant on its context fails with ErrNoTenantScope whichever way gorm gets
// to the table (TestTenantScopeIsRequired covers the common calls) and
// whichever *gorm.DB it runs on: a Tx's with the context dropped, a new
// session of it, the strategy's own root, or an application's root with
// EnforceTenantScope, where the admin connection bypasses row-level
// security and the scope is all there is. The same statements with the
// tenant set succeed, so the error is the scope's, not the statement's.
func TestScopeRefusesEveryPath(t *testing.T) {
	t.Parallel()
	opts, s, a, b := twoTenants(t)
	admin := pgtest.Admin(t, opts.Database)
	var aProject, bSubtask int64
	if err := admin.QueryRow(`SELECT (SELECT id FROM projects WHERE account_id = $1), (SELECT min(id) FROM subtasks WHERE account_id = $2)`, a.ID, b.ID).Scan(&aProject, &bSubtask); err != nil {
		t.Fatal(err)
	}
	paths := []struct {
		name string
		run  func(db *gorm.DB) error
	}{
		{"Find", func(db *gorm.DB) error { var v []models.Subtask; return db.Find(&v).Error }},
		{"Find into maps with Model", func(db *gorm.DB) error {
			var v []map[string]any
			return db.Model(&models.Project{}).Find(&v).Error
		}},
		{"Scan with Model", func(db *gorm.DB) error {
			var v []models.SubtaskRow
			return db.Model(&models.Subtask{}).Select("id, name").Scan(&v).Error
		}},
		{"Rows", func(db *gorm.DB) error {
			rows, err := db.Model(&models.User{}).Rows()
			if err == nil {
				rows.Close()
			}
			return err
		}},
		{"Distinct Pluck", func(db *gorm.DB) error {
			var v []string
			return db.Model(&models.Task{}).Distinct().Pluck("name", &v).Error
		}},
		{"FindInBatches", func(db *gorm.DB) error {
			var v []models.Subtask
			return db.FindInBatches(&v, 2, func(*gorm.DB, int) error { return nil }).Error
		}},
		{"FirstOrCreate", func(db *gorm.DB) error { return db.FirstOrCreate(&models.Project{Name: "first or create"}).Error }},
		{"Association Find", func(db *gorm.DB) error {
			var v []models.Task
			return db.Model(&models.Project{ID: aProject}).Association("Tasks").Find(&v)
		}},
		{"Preload nested", func(db *gorm.DB) error { var v []models.Project; return db.Preload("Tasks.Subtasks").Find(&v).Error }},
		{"Joins nested", func(db *gorm.DB) error { var v []models.Subtask; return db.Joins("Task.Project").Find(&v).Error }},
		{"Find of accounts", func(db *gorm.DB) error { var v []models.Account; return db.Find(&v).Error }},
		{"Updates by primary key", func(db *gorm.DB) error {
			return db.Model(&models.Subtask{ID: bSubtask}).Updates(map[string]any{"name": "by key"}).Error
		}},
		{"Delete by primary key", func(db *gorm.DB) error { return db.Delete(&models.Subtask{}, bSubtask).Error }},
	}
	bare := context.Background()
	dbs := []struct {
		name string
		run  func(fn func(db *gorm.DB) error) error
	}{
		{"Tx with the context dropped", func(fn func(*gorm.DB) error) error {
			return s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error { return fn(tx.WithContext(bare)) })
		}},
		{"new session of a Tx", func(fn func(*gorm.DB) error) error {
			return s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error { return fn(tx.Session(&gorm.Session{NewDB: true, Context: bare})) })
		}},
		{"the strategy's root", func(fn func(*gorm.DB) error) error { return fn(s.app) }},
		{"an EnforceTenantScope root on the admin connection", func(fn func(*gorm.DB) error) error { return fn(scopeOnly(t, opts)) }},
	}
	for _, d := range dbs {
		for _, p := range paths {
			if err := d.run(p.run); !errors.Is(err, strategy.ErrNoTenantScope) {
				t.Errorf("%s on %s with no tenant: err = %v, want ErrNoTenantScope", p.name, d.name, err)
			}
		}
	}
	for _, p := range paths {
		err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
			if err := p.run(tx); err != nil {
				return err
			}
			return errUndo
		})
		if !errors.Is(err, errUndo) {
			t.Errorf("%s in a Tx of %s: err = %v, want it to run", p.name, a.Slug, err)
		}
	}
	var name string
	if err := admin.QueryRow(`SELECT name FROM subtasks WHERE id = $1`, bSubtask).Scan(&name); err != nil || name == "by key" {
		t.Errorf("%s's subtask %d after the refused writes: name %q (err %v), want it untouched", b.Slug, bSubtask, name, err)
	}
}

// TestPoliciesAloneScopeGorm takes the tenant scope away: a plain gorm root
// on the app role's connection, no plugin. Row-level security alone must
// then keep Find, Joins, Preload, Count, Update, Delete and Create to the
// tenant set in the transaction, and show nothing when none is set.
func TestPoliciesAloneScopeGorm(t *testing.T) {
	t.Parallel()
	opts, _, a, b := twoTenants(t)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: pgtest.Open(t, opts.AppUser, "", opts.Database)}),
		&gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	// The scope is off: a query with no tenant is not refused, and row-level
	// security, with no tenant set, shows nothing.
	var none []models.Subtask
	if err := db.Find(&none).Error; err != nil || len(none) != 0 {
		t.Fatalf("Find with no scope and no tenant: %d rows, err %v; want 0 rows and no error", len(none), err)
	}
	inTenant := func(tenant models.Account, fn func(tx *gorm.DB) error) error {
		return db.Transaction(func(tx *gorm.DB) error {
			if err := setTenant(tx, int64(tenant.ID), transactionLocal); err != nil {
				return err
			}
			if err := fn(tx); err != nil {
				return err
			}
			return errUndo
		})
	}
	seen := func(tenant models.Account) (subs, joined, preloaded, accounts int, others []string, err error) {
		err = inTenant(tenant, func(tx *gorm.DB) error {
			var s, j []models.Subtask
			var p []models.Project
			var accts []models.Account
			if err := tx.Find(&s).Error; err != nil {
				return err
			}
			if err := tx.Joins("Task.Project").Find(&j).Error; err != nil {
				return err
			}
			if err := tx.Preload("Tasks.Subtasks").Find(&p).Error; err != nil {
				return err
			}
			if err := tx.Find(&accts).Error; err != nil {
				return err
			}
			var tasks []models.Task
			var users []models.User
			if err := tx.Find(&tasks).Error; err != nil {
				return err
			}
			if err := tx.Find(&users).Error; err != nil {
				return err
			}
			for _, x := range tasks {
				if x.AccountID != tenant.ID {
					others = append(others, fmt.Sprintf("task %d of account %d", x.ID, x.AccountID))
				}
			}
			for _, x := range users {
				if x.AccountID != tenant.ID {
					others = append(others, fmt.Sprintf("user %d of account %d", x.ID, x.AccountID))
				}
			}
			for _, x := range append(s, j...) {
				if x.AccountID != tenant.ID || (x.Task != nil && x.Task.AccountID != tenant.ID) {
					others = append(others, fmt.Sprintf("subtask %d of account %d", x.ID, x.AccountID))
				}
			}
			for _, x := range p {
				if x.AccountID != tenant.ID {
					others = append(others, fmt.Sprintf("project %d of account %d", x.ID, x.AccountID))
				}
				for _, task := range x.Tasks {
					preloaded += len(task.Subtasks)
				}
			}
			for _, x := range accts {
				if x.ID != tenant.ID {
					others = append(others, "account "+x.Slug)
				}
			}
			subs, joined, accounts = len(s), len(j), len(accts)
			return nil
		})
		if errors.Is(err, errUndo) {
			err = nil
		}
		return
	}
	for _, tc := range []struct {
		tenant, other models.Account
		want          int
	}{{a, b, 3}, {b, a, 5}} {
		subs, joined, preloaded, accounts, others, err := seen(tc.tenant)
		if err != nil {
			t.Fatalf("reads as %s: %v", tc.tenant.Slug, err)
		}
		if subs != tc.want || joined != tc.want || preloaded != tc.want || accounts != 1 || len(others) > 0 {
			t.Errorf("as %s with no scope: Find %d, Joins %d, Preload %d subtasks, %d accounts, others' rows %v; want %d, %d, %d, 1, none",
				tc.tenant.Slug, subs, joined, preloaded, accounts, others, tc.want, tc.want, tc.want)
		}
		err = inTenant(tc.tenant, func(tx *gorm.DB) error {
			var n int64
			if err := tx.Model(&models.Subtask{}).Count(&n).Error; err != nil || n != int64(tc.want) {
				t.Errorf("Count as %s: %d (err %v), want %d", tc.tenant.Slug, n, err, tc.want)
			}
			if res := tx.Model(&models.Subtask{}).Where("true").Update("details", "x"); res.Error != nil || res.RowsAffected != int64(tc.want) {
				t.Errorf("Update of every subtask as %s: affected %d (err %v), want its own %d", tc.tenant.Slug, res.RowsAffected, res.Error, tc.want)
			}
			if res := tx.Where("account_id = ?", tc.other.ID).Delete(&models.Subtask{}); res.Error != nil || res.RowsAffected != 0 {
				t.Errorf("Delete of %s's subtasks as %s: affected %d (err %v), want 0", tc.other.Slug, tc.tenant.Slug, res.RowsAffected, res.Error)
			}
			// In a savepoint, so that the refusal leaves the transaction usable.
			err := tx.Transaction(func(sp *gorm.DB) error {
				return sp.Create(&models.Project{AccountID: tc.other.ID, Name: "planted"}).Error
			})
			if !pg.IsRLSViolation(err) {
				t.Errorf("Create of a project of %s as %s: err = %v, want a row-level security violation", tc.other.Slug, tc.tenant.Slug, err)
			}
			return nil
		})
		if !errors.Is(err, errUndo) {
			t.Fatalf("writes as %s: %v", tc.tenant.Slug, err)
		}
	}

	// Control: with the policy off, the same reads do see the other tenant,
	// so the checks above would notice a leak.
	strategytest.MustExec(t, pgtest.Admin(t, opts.Database), "ALTER TABLE subtasks DISABLE ROW LEVEL SECURITY")
	if subs, _, _, _, _, err := seen(a); err != nil || subs != 8 {
		t.Errorf("control: with row-level security disabled, Find as %s got %d subtasks (err %v), want all 8", a.Slug, subs, err)
	}
}

// TestRawSQLStaysInTenant: raw SQL through the app role, in a transaction
// of tenant A, can neither read nor touch tenant B's rows, and every write
// that would put a row in B (INSERT, or UPDATE moving A's rows) is refused
// by the policies' WITH CHECK itself (42501), table by table. Users, which
// have no composite foreign key to fall back on, show WITH CHECK alone.
// Outside a tenant transaction the role reaches nothing at all.
func TestRawSQLStaysInTenant(t *testing.T) {
	t.Parallel()
	opts, s, a, b := twoTenants(t)
	admin := pgtest.Admin(t, opts.Database)
	snapshot := func() string {
		var out string
		if err := admin.QueryRow(`SELECT concat_ws('|',
			(SELECT string_agg(concat_ws(',', id, slug, name), ';' ORDER BY id) FROM accounts),
			(SELECT string_agg(concat_ws(',', id, account_id, email), ';' ORDER BY id) FROM users),
			(SELECT string_agg(concat_ws(',', id, account_id, name), ';' ORDER BY id) FROM projects),
			(SELECT string_agg(concat_ws(',', id, account_id, project_id, name), ';' ORDER BY id) FROM tasks),
			(SELECT string_agg(concat_ws(',', id, account_id, task_id, name, details), ';' ORDER BY id) FROM subtasks))`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	tables := []string{"users", "projects", "tasks", "subtasks"}
	// Each tenant needs a row in every table, or a write aimed at its rows
	// would prove nothing.
	for _, acct := range []models.Account{a, b} {
		strategytest.MustExec(t, admin, fmt.Sprintf(`INSERT INTO users (account_id, email, first_name, last_name, password, date_joined)
			VALUES (%d, '%s@example.com', 'F', 'L', '!', now())`, acct.ID, acct.Slug))
		for _, table := range tables {
			var n int
			if err := admin.QueryRow(`SELECT count(*) FROM `+table+` WHERE account_id = $1`, acct.ID).Scan(&n); err != nil || n == 0 {
				t.Fatalf("%s has %d rows of %s (err %v), want some", table, n, acct.Slug, err)
			}
		}
	}
	before := snapshot()

	// Reads: none of B's rows, whichever way they are asked for.
	err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
		for _, q := range []string{
			"SELECT count(*) FROM accounts WHERE id = ?",
			"SELECT count(*) FROM users WHERE account_id = ?",
			"SELECT count(*) FROM projects WHERE account_id = ?",
			"SELECT count(*) FROM tasks WHERE account_id = ?",
			"SELECT count(*) FROM subtasks WHERE account_id = ?",
			"SELECT count(*) FROM subtasks s JOIN tasks t ON t.id = s.task_id WHERE t.account_id = ?",
			"SELECT count(*) FROM (SELECT account_id FROM subtasks UNION ALL SELECT id FROM accounts) u WHERE account_id = ?",
		} {
			var n int64
			if err := tx.Raw(q, b.ID).Scan(&n).Error; err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			if n != 0 {
				t.Errorf("as %s: %s with %s's id = %d, want 0", a.Slug, q, b.Slug, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// What a write must come to: no row, the policy's refusal, or no
	// privilege at all.
	const (
		noRow = iota
		policyRefuses
		notGranted
	)
	type write struct {
		name, sql string
		want      int
	}
	var writes []write
	for _, table := range tables {
		writes = append(writes,
			write{"UPDATE of B's " + table, fmt.Sprintf("UPDATE %s SET account_id = account_id WHERE account_id = %d", table, b.ID), noRow},
			write{"DELETE of B's " + table, fmt.Sprintf("DELETE FROM %s WHERE account_id = %d", table, b.ID), noRow},
			write{"INSERT into B's " + table, fmt.Sprintf("INSERT INTO %s (account_id) VALUES (%d)", table, b.ID), policyRefuses},
			write{"UPDATE moving A's " + table + " to B", fmt.Sprintf("UPDATE %s SET account_id = %d", table, b.ID), policyRefuses},
		)
	}
	writes = append(writes,
		write{"INSERT ... SELECT of B's projects", fmt.Sprintf("INSERT INTO projects (account_id, name) SELECT %d, name FROM projects WHERE account_id = %d", a.ID, b.ID), noRow},
		write{"UPDATE ... FROM B's projects", fmt.Sprintf("UPDATE projects SET name = p.name FROM projects p WHERE p.account_id = %d", b.ID), noRow},
		write{"UPDATE of B's account", fmt.Sprintf("UPDATE accounts SET name = 'x' WHERE id = %d", b.ID), notGranted},
	)
	for _, w := range writes {
		var affected int64
		err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
			res := tx.Exec(w.sql)
			affected = res.RowsAffected
			return res.Error
		})
		switch {
		case w.want == noRow && (err != nil || affected != 0):
			t.Errorf("as %s: %s: affected %d, err %v; want no row and no error", a.Slug, w.name, affected, err)
		case w.want == policyRefuses && !pg.IsRLSViolation(err):
			t.Errorf("as %s: %s: affected %d, err %v; want the row-level security policy's refusal", a.Slug, w.name, affected, err)
		case w.want == notGranted && (!pg.IsPgError(err, "42501") || pg.IsRLSViolation(err)):
			t.Errorf("as %s: %s: affected %d, err %v; want permission denied (42501)", a.Slug, w.name, affected, err)
		}
	}

	// With no tenant set at all (the app role's own connection, no Tx),
	// writes reach nothing either.
	app := pgtest.Open(t, opts.AppUser, "", opts.Database)
	for _, table := range tables {
		for _, q := range []string{"UPDATE " + table + " SET account_id = account_id", "DELETE FROM " + table} {
			res, err := app.Exec(q)
			if err != nil {
				t.Errorf("with no tenant: %s: %v", q, err)
				continue
			}
			if n, _ := res.RowsAffected(); n != 0 {
				t.Errorf("with no tenant: %s affected %d rows, want 0", q, n)
			}
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("the tables changed under refused writes:\nbefore %s\nafter  %s", before, after)
	}
}
