package singleschema

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/strategytest"
)

func TestAllTenantsPagesCoverEveryRowOnce(t *testing.T) {
	t.Parallel()
	AllTenantsPagesCoverEveryRowOnce(t, Harness())
}

// AllTenantsPagesCoverEveryRowOnce walks the all-tenants view page by
// page and compares it with the rows in the order it promises (account,
// then name, then id), including pages that span tenants, a tenant with no
// subtasks, and the page after the last. TestOnCitus runs it on Citus,
// where the page is read another way (listAllTenantsByTenant).
func AllTenantsPagesCoverEveryRowOnce(t *testing.T, h strategytest.Harness) {
	opts, admin, s := strategytest.Deploy(t, h)
	strategytest.AddTenant(t, admin, s, "tenant-0", 7)
	strategytest.AddTenant(t, admin, s, "tenant-1", 0)
	strategytest.AddTenant(t, admin, s, "tenant-2", 1)
	strategytest.AddTenant(t, admin, s, "tenant-3", 12)
	want := strategytest.Int64s(t, pgtest.Admin(t, opts.Database), `SELECT id FROM subtasks ORDER BY account_id, name, id`)
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
			if _, err := s.ListSubtasks(all, past, perPage); !errors.Is(err, strategy.ErrPageNotFound) {
				t.Errorf("per page %d: page %d (past the end): err = %v, want ErrPageNotFound", perPage, past, err)
			}
		}
	}
}

// TestPageStatementsFillTheRightPlaces: the page statement written once per
// shape gives each tenant its own rows at the right offset, the same as
// having gorm write it for that tenant and page.
//
// The shape a page is read with follows from the tenant's remembered
// total (pages.Statements.Statement), so each case first remembers a total
// that gives the shape it names: 0 reads every later page from the end, and
// a huge one every page from the start.
func TestPageStatementsFillTheRightPlaces(t *testing.T) {
	t.Parallel()
	_, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 25)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 13)
	ss := s.(*Server)
	ctx := context.Background()
	type shape struct {
		page, perPage int
		fromEnd       bool
	}
	cases := []struct {
		tenant models.Account
		shape
	}{{a, shape{1, 10, false}}, {a, shape{3, 10, true}}, {b, shape{2, 5, false}}, {b, shape{1, 5, false}}, {a, shape{2, 10, false}}, {b, shape{3, 5, true}}, {a, shape{2, 10, true}}}
	remember := func(slug string, fromEnd bool) {
		total := int64(1 << 40)
		if fromEnd {
			total = 0
		}
		pagesOf(s).NoteTotal(slug, strategy.SubtaskPage{Total: total}, nil)
	}
	for _, tc := range cases {
		remember(tc.tenant.Slug, tc.fromEnd)
		query, args, err := pagesOf(s).Statement(ctx, ss.app, pages.Query{Denormalised: true}, tc.tenant, tc.page, tc.perPage)
		if err != nil {
			t.Fatal(err)
		}
		dry := pages.PageQuery(ss.app.Session(&gorm.Session{DryRun: true, NewDB: true, Context: strategytest.TenantCtx(tc.tenant)}),
			pages.Query{Denormalised: true}, tc.page, tc.perPage, tc.fromEnd).Find(&[]pages.Row{})
		if query != dry.Statement.SQL.String() || fmt.Sprint(args) != fmt.Sprint(dry.Statement.Vars) {
			t.Errorf("%s page %d of %d (from the end: %v): kept statement\n%s %v\nwant what gorm writes\n%s %v",
				tc.tenant.Slug, tc.page, tc.perPage, tc.fromEnd, query, args, dry.Statement.SQL.String(), dry.Statement.Vars)
		}
	}

	// One statement kept per shape (here 6: two page sizes; first page,
	// later page, or from the end), whatever the tenant and page: each
	// case's shape, for the other tenant at another page, needs no new
	// statement. The kept shapes are not visible from this package, so ask
	// for each on a root that cannot write a statement: only a kept shape
	// can answer.
	unwritable := ss.app.Session(&gorm.Session{NewDB: true})
	unwritable.AddError(errors.New("no statement may be written on this root"))
	kept := func(tenant models.Account, sh shape) bool {
		remember(tenant.Slug, sh.fromEnd)
		_, _, err := pagesOf(s).Statement(ctx, unwritable, pages.Query{Denormalised: true}, tenant, sh.page, sh.perPage)
		return err == nil
	}
	if kept(a, shape{2, 7, false}) {
		t.Fatal("a page size never asked for has a kept statement: this check cannot tell kept shapes from new ones")
	}
	for _, tc := range cases {
		// The same shapes for the other tenant, at another page: first
		// pages stay first pages, later pages stay later.
		other, page := b, tc.page
		if tc.tenant == b {
			other = a
		}
		if page > 1 {
			page++
		}
		sh := shape{page, tc.perPage, tc.fromEnd}
		if !kept(other, sh) {
			t.Errorf("%s page %d of %d (from the end: %v): no kept statement; want the one written for %s page %d",
				other.Slug, sh.page, sh.perPage, sh.fromEnd, tc.tenant.Slug, tc.page)
		}
	}
}

// pagesOf is the page statements (and remembered totals) of s.
func pagesOf(s strategy.Strategy) *pages.Statements {
	if s, ok := s.(*Server); ok {
		return &s.pages
	}
	panic(fmt.Sprintf("pagesOf: %T", s))
}

// maxPageNumber is the largest page number the handlers accept: past the
// end, it must be a 404 like any other, at any page size.
const maxPageNumber = 999_999_999
