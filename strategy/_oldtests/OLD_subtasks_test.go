package strategy

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
)

// TestSubtaskCountsFollowWrites: the totals the list pages show come from
// trigger-kept counts, which must match count(*) after every kind of write,
// through the app (as the tenant, under row-level security) and as the
// admin, including a subtask moved to another tenant.
func TestSubtaskCountsFollowWrites(t *testing.T) {
	t.Parallel()
	for _, name := range []string{SingleSchema, MultiDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts, admin, s := deploy(t, name)
			a := addTenant(t, admin, s, "tenant-0", 5)
			b := addTenant(t, admin, s, "tenant-1", 3)
			ctx := context.Background()
			steps := []struct {
				what   string
				tenant models.Account
				write  func(tx *gorm.DB) error
			}{
				{"insert two", a, func(tx *gorm.DB) error {
					var task models.Task
					if err := tx.Take(&task).Error; err != nil {
						return err
					}
					return tx.Create(&[]models.Subtask{{TaskID: task.ID, Name: "new 1"}, {TaskID: task.ID, Name: "new 2"}}).Error
				}},
				{"delete three", a, func(tx *gorm.DB) error {
					return tx.Where("name IN ?", []string{"tenant-0 subtask 0", "tenant-0 subtask 1", "new 1"}).Delete(&models.Subtask{}).Error
				}},
				{"update without moving", b, func(tx *gorm.DB) error {
					return tx.Model(&models.Subtask{}).Where("true").Update("is_complete", true).Error
				}},
				{"delete all", b, func(tx *gorm.DB) error {
					return tx.Where("true").Delete(&models.Subtask{}).Error
				}},
			}
			for _, st := range steps {
				if err := s.Tx(tenantCtx(st.tenant), st.write); err != nil {
					t.Fatalf("%s: %v", st.what, err)
				}
				checkTotals(t, opts, s, st.what, a, b)
			}
			if name == SingleSchema {
				// As the admin, move one of a's subtasks to b (with a task of
				// b's own, as the composite foreign key demands).
				db := pgtest.Admin(t, opts.Database)
				_, err := db.ExecContext(ctx, `UPDATE subtasks SET account_id = $2, task_id = (SELECT id FROM tasks WHERE account_id = $2 LIMIT 1)
					WHERE id = (SELECT min(id) FROM subtasks WHERE account_id = $1)`, int64(a.ID), int64(b.ID))
				if err != nil {
					t.Fatal(err)
				}
				checkTotals(t, opts, s, "move one to another tenant", a, b)
			}
			// TRUNCATE fires no transition-table trigger: its own trigger
			// must clear the counts.
			database := opts.Database
			if name == MultiDB {
				database = opts.TenantDatabase(0)
			}
			if _, err := pgtest.Admin(t, database).ExecContext(ctx, "TRUNCATE subtasks"); err != nil {
				t.Fatal(err)
			}
			checkTotals(t, opts, s, "truncate", a, b)
		})
	}
}

// checkTotals compares each tenant's list total with count(*).
func checkTotals(t *testing.T, opts Options, s Strategy, after string, tenants ...models.Account) {
	t.Helper()
	for _, tn := range tenants {
		page, err := s.ListSubtasks(tenantCtx(tn), 1, 10)
		if err != nil {
			t.Fatalf("after %s: list %s: %v", after, tn.Slug, err)
		}
		database, where := opts.Database, fmt.Sprintf("WHERE account_id = %d", tn.ID)
		if opts.Strategy == MultiDB {
			i, _ := ParseSlug(tn.Slug)
			database, where = opts.TenantDatabase(i), ""
		}
		var n int64
		if err := pgtest.Admin(t, database).QueryRow("SELECT count(*) FROM subtasks " + where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if page.Total != n || len(page.Rows) != int(min(n, 10)) {
			t.Errorf("after %s: %s lists total %d with %d rows; count(*) = %d", after, tn.Slug, page.Total, len(page.Rows), n)
		}
	}
}

// TestAllTenantsPagesCoverEveryRowOnce walks the all-tenants view page by
// page and compares it with the rows in the order it promises (account,
// then name, then id), including pages that span tenants, a tenant with no
// subtasks, and the page after the last.
func TestAllTenantsPagesCoverEveryRowOnce(t *testing.T) {
	t.Parallel()
	opts, admin, s := deploy(t, SingleSchema)
	addTenant(t, admin, s, "tenant-0", 7)
	addTenant(t, admin, s, "tenant-1", 0)
	addTenant(t, admin, s, "tenant-2", 1)
	addTenant(t, admin, s, "tenant-3", 12)
	want := int64s(t, pgtest.Admin(t, opts.Database), `SELECT id FROM subtasks ORDER BY account_id, name, id`)
	all := models.NewContextForAllTenants(context.Background())
	for _, perPage := range []int{1, 3, 5, 20, 100} {
		var got []int64
		pages := (len(want) + perPage - 1) / perPage
		for p := 1; p <= pages; p++ {
			page, err := s.ListSubtasks(all, p, perPage)
			if err != nil {
				t.Fatalf("per page %d: page %d: %v", perPage, p, err)
			}
			if page.Total != int64(len(want)) || page.Pages != pages {
				t.Errorf("per page %d: page %d says %d rows in %d pages; want %d in %d", perPage, p, page.Total, page.Pages, len(want), pages)
			}
			for _, r := range page.Rows {
				got = append(got, r.ID)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("per page %d: pages give ids\n%v\nwant\n%v", perPage, got, want)
		}
		for _, past := range []int{pages + 1, maxPageNumber} {
			if _, err := s.ListSubtasks(all, past, perPage); !errors.Is(err, ErrPageNotFound) {
				t.Errorf("per page %d: page %d (past the end): err = %v, want ErrPageNotFound", perPage, past, err)
			}
		}
	}
}

// TestTenantPagesCoverEveryRowOnce: paging through a tenant gives each of
// its rows once, in name then id order, whether a page is read from the
// front or (past the middle) from the back, with full and partial last
// pages, one row, and none; and a page past the end is not found.
func TestTenantPagesCoverEveryRowOnce(t *testing.T) {
	t.Parallel()
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, admin, s := deploy(t, name)
			var tenants []models.Account
			for i, n := range []int{0, 1, 23} { // multidb's tests have three tenants
				tenants = append(tenants, addTenant(t, admin, s, fmt.Sprintf("tenant-%d", i), n))
			}
			// The remembered total picks the end a page is read from; a
			// wrong one must not change the rows, only the cost.
			remembered := map[string]func(slug string, want int){
				"as read":              func(string, int) {},
				"none":                 func(slug string, _ int) { delete(pagesOf(s).totals, slug) },
				"0: all from the end":  func(slug string, _ int) { pagesOf(s).remember(slug, 0) },
				"huge: all from start": func(slug string, _ int) { pagesOf(s).remember(slug, 1<<40) },
				"one too few":          func(slug string, want int) { pagesOf(s).remember(slug, int64(want-1)) },
			}
			for hint, setHint := range remembered {
				for _, tn := range tenants {
					var want []int64
					err := s.Tx(tenantCtx(tn), func(tx *gorm.DB) error {
						return tx.Model(&models.Subtask{}).Order("name, id").Pluck("id", &want).Error
					})
					if err != nil {
						t.Fatal(err)
					}
					for _, perPage := range []int{1, 3, 5, 10, 20, 23} {
						pages := max(1, (len(want)+perPage-1)/perPage)
						var got []int64
						for p := 1; p <= pages; p++ {
							setHint(tn.Slug, len(want))
							page, err := s.ListSubtasks(tenantCtx(tn), p, perPage)
							if err != nil {
								t.Fatalf("total remembered %s: %s, %d a page: page %d: %v", hint, tn.Slug, perPage, p, err)
							}
							if page.Total != int64(len(want)) || page.Pages != pages {
								t.Errorf("%s, %d a page: page %d says %d rows in %d pages; want %d in %d",
									tn.Slug, perPage, p, page.Total, page.Pages, len(want), pages)
							}
							for _, r := range page.Rows {
								got = append(got, r.ID)
							}
						}
						if fmt.Sprint(got) != fmt.Sprint(want) {
							t.Errorf("total remembered %s: %s, %d a page: pages give ids\n%v\nwant\n%v", hint, tn.Slug, perPage, got, want)
						}
						for _, past := range []int{pages + 1, maxPageNumber} {
							setHint(tn.Slug, len(want))
							if _, err := s.ListSubtasks(tenantCtx(tn), past, perPage); !errors.Is(err, ErrPageNotFound) {
								t.Errorf("total remembered %s: %s, %d a page: page %d (past the end): err = %v, want ErrPageNotFound", hint, tn.Slug, perPage, past, err)
							}
						}
					}
				}
			}
		})
	}
}

// TestPageStatementsFillTheRightPlaces: the page statement written once per
// shape gives each tenant its own rows at the right offset, the same as
// having gorm write it for that tenant and page.
func TestPageStatementsFillTheRightPlaces(t *testing.T) {
	t.Parallel()
	_, admin, s := deploy(t, SingleSchema)
	a := addTenant(t, admin, s, "tenant-0", 25)
	b := addTenant(t, admin, s, "tenant-1", 13)
	ss := s.(*singleSchema)
	ctx := context.Background()
	for _, tc := range []struct {
		tenant        models.Account
		page, perPage int
		fromEnd       bool
	}{{a, 1, 10, false}, {a, 3, 10, true}, {b, 2, 5, false}, {b, 1, 5, false}, {a, 2, 10, false}, {b, 3, 5, true}, {a, 2, 10, true}} {
		shape := pageShape{perPage: tc.perPage, first: tc.page == 1, fromEnd: tc.fromEnd}
		query, args, err := ss.pages.statementOf(ctx, ss.app, subtaskQuery{denormalised: true}, tc.tenant, shape, tc.page)
		if err != nil {
			t.Fatal(err)
		}
		dry := subtaskPageQuery(ss.app.Session(&gorm.Session{DryRun: true, NewDB: true, Context: tenantCtx(tc.tenant)}),
			subtaskQuery{denormalised: true}, tc.page, tc.perPage, tc.fromEnd).Find(&[]pagedRow{})
		if query != dry.Statement.SQL.String() || fmt.Sprint(args) != fmt.Sprint(dry.Statement.Vars) {
			t.Errorf("%s page %d of %d (from the end: %v): kept statement\n%s %v\nwant what gorm writes\n%s %v",
				tc.tenant.Slug, tc.page, tc.perPage, tc.fromEnd, query, args, dry.Statement.SQL.String(), dry.Statement.Vars)
		}
	}
	if len(ss.pages.shapes) != 6 {
		t.Errorf("%d statement shapes kept, want 6 (two page sizes; first page, later page, or from the end)", len(ss.pages.shapes))
	}
}

// TestAppCannotWriteCounts: the counts the list pages and the all-tenants
// paging trust are written by the triggers alone; the app role, even in its
// own tenant's transaction, may only read them.
func TestAppCannotWriteCounts(t *testing.T) {
	t.Parallel()
	for _, name := range []string{SingleSchema, MultiDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, admin, s := deploy(t, name)
			a := addTenant(t, admin, s, "tenant-0", 2)
			for _, stmt := range []string{
				"UPDATE subtask_counts SET subtasks = 0",
				"DELETE FROM subtask_counts",
				fmt.Sprintf("INSERT INTO subtask_counts (account_id, subtasks) VALUES (%d, 99) ON CONFLICT (account_id) DO UPDATE SET subtasks = 99", a.ID),
			} {
				err := s.Tx(tenantCtx(a), func(tx *gorm.DB) error { return tx.Exec(stmt).Error })
				if !IsPgError(err, "42501") { // insufficient_privilege
					t.Errorf("%s as the app role: err = %v, want permission denied", stmt, err)
				}
			}
			if page, err := s.ListSubtasks(tenantCtx(a), 1, 10); err != nil || page.Total != 2 {
				t.Errorf("total after the attempts: %d (err %v), want 2", page.Total, err)
			}
		})
	}
}

// pagesOf is the page statements (and remembered totals) of s.
func pagesOf(s Strategy) *pageStatements {
	switch s := s.(type) {
	case *singleSchema:
		return &s.pages
	case *multiDB:
		return &s.pages
	}
	panic(fmt.Sprintf("pagesOf: %T", s))
}

// maxPageNumber is the largest page number the handlers accept: past the
// end, it must be a 404 like any other, at any page size.
const maxPageNumber = 999_999_999
