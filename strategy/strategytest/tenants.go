package strategytest

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// digestTables are the tables whose rows make up a tenant, with the
// column that names the tenant where a table has one.
var digestTables = []struct{ table, column string }{
	{"accounts", "id"}, {"users", "account_id"}, {"projects", "account_id"},
	{"tasks", "account_id"}, {"subtasks", "account_id"}, {"subtask_counts", "account_id"},
}

// TenantDigest is an md5 of every row of tenant a, table by table, each
// row as PostgreSQL prints it, in order: equal digests mean the tenant's
// rows are byte for byte the same. In a table with no tenant column (the
// tenant's own database or schema) every row is the tenant's.
func TenantDigest(t testing.TB, h Harness, opts strategy.Options, a models.Account) map[string]string {
	t.Helper()
	db := h.TenantDB(t, opts, a.Slug)
	out := map[string]string{}
	for _, d := range digestTables {
		var sum sql.NullString
		err := db.QueryRow(`SELECT md5(string_agg(r::text, E'\n' ORDER BY r::text)) FROM `+d.table+` r WHERE `+d.column+` = $1`, int64(a.ID)).Scan(&sum)
		if pg.IsPgError(err, "42703") { // no tenant column: the table is the tenant's alone
			err = db.QueryRow(`SELECT md5(string_agg(r::text, E'\n' ORDER BY r::text)) FROM ` + d.table + ` r`).Scan(&sum)
		}
		if err != nil {
			t.Fatalf("digest of %s's %s: %v", a.Slug, d.table, err)
		}
		out[d.table] = sum.String
	}
	return out
}

// digests is TenantDigest of each of accounts.
func digests(t testing.TB, h Harness, opts strategy.Options, accounts []models.Account) []map[string]string {
	t.Helper()
	out := make([]map[string]string, len(accounts))
	for i, a := range accounts {
		out[i] = TenantDigest(t, h, opts, a)
	}
	return out
}

func slugsOf(entries []strategy.TenantEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Slug
	}
	return out
}

// testTenantLifecycle: a tenant added through the directory is listed and
// served (to a server that was running before it was added); adding it
// again, or under a slug that is not valid, is refused and writes
// nothing; deleting it removes everything that was its own and leaves
// every other tenant's rows byte for byte as they were.
func testTenantLifecycle(t *testing.T, h Harness) {
	opts, admin, s := Deploy(t, h)
	ctx := context.Background()
	others := []models.Account{AddTenant(t, admin, s, "tenant-0", 3), AddTenant(t, admin, s, "tenant-1", 5)}
	before := digests(t, h, opts, others)

	e, err := admin.AddTenant(ctx, strategy.TenantSpec{Slug: "acme", Name: "Acme Inc"})
	if err != nil {
		t.Fatalf("AddTenant(acme): %v", err)
	}
	if e.Slug != "acme" || e.Name != "Acme Inc" || e.ID == 0 || e.Location == "" || len(e.Holds) == 0 {
		t.Errorf("AddTenant(acme) = %+v, want its slug, name, an id, a location and what it holds", e)
	}
	acct, err := s.TenantBySlug(ctx, "acme")
	if err != nil || acct.ID != e.ID || acct.Name != "Acme Inc" {
		t.Fatalf("a running server's TenantBySlug(acme) = %+v, %v; want id %d named Acme Inc", acct, err, e.ID)
	}
	if page, err := s.ListSubtasks(TenantCtx(acct), 1, 10); err != nil || page.Total != 0 {
		t.Errorf("acme's first page: total %d, err %v; want an empty tenant", page.Total, err)
	}
	// acme gets rows of its own, through the server, for delete to remove.
	err = s.Tx(TenantCtx(acct), func(tx *gorm.DB) error {
		p := models.Project{Name: "acme project"}
		if err := tx.Create(&p).Error; err != nil {
			return err
		}
		task := models.Task{ProjectID: p.ID, Name: "acme task"}
		if err := tx.Create(&task).Error; err != nil {
			return err
		}
		return tx.Create(&models.Subtask{TaskID: task.ID, Name: "acme subtask"}).Error
	})
	if err != nil {
		t.Fatalf("write acme's rows as the server: %v", err)
	}
	list, err := admin.ListTenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"acme", "tenant-0", "tenant-1"} {
		if !slices.Contains(slugsOf(list), want) {
			t.Errorf("ListTenants = %v, want %s in it", slugsOf(list), want)
		}
	}
	if !slices.IsSorted(slugsOf(list)) {
		t.Errorf("ListTenants = %v, want them by slug", slugsOf(list))
	}
	served, err := s.Tenants(ctx)
	if err != nil || !slices.ContainsFunc(served, func(a models.Account) bool { return a.Slug == "acme" }) {
		t.Errorf("the running server's Tenants() = %v, %v; want acme in it", served, err)
	}
	withAcme := digests(t, h, opts, append(others, acct))

	// Refusals write nothing.
	for _, spec := range []strategy.TenantSpec{
		{Slug: "acme", Name: "Another"}, {Slug: "tenant-0", Name: "Another"},
		{Slug: "Acme"}, {Slug: "tenant-01"}, {Slug: "tenant-template"}, {Slug: "a_b"}, {Slug: "x'; DROP TABLE accounts;--"},
	} {
		_, err := admin.AddTenant(ctx, spec)
		switch {
		case err == nil:
			t.Errorf("AddTenant(%q) succeeded, want a refusal", spec.Slug)
		case (spec.Slug == "acme" || spec.Slug == "tenant-0") && !errors.Is(err, strategy.ErrTenantExists):
			t.Errorf("AddTenant(%q) = %v, want ErrTenantExists", spec.Slug, err)
		}
	}
	if got := digests(t, h, opts, append(others, acct)); !slices.EqualFunc(got, withAcme, mapsEqual) {
		t.Errorf("refused AddTenants changed rows: %v, want %v", got, withAcme)
	}
	if again, err := admin.ListTenants(ctx); err != nil || !slices.Equal(slugsOf(again), slugsOf(list)) {
		t.Errorf("ListTenants after the refusals = %v, %v; want %v", slugsOf(again), err, slugsOf(list))
	}

	deleted, err := admin.DeleteTenant(ctx, "acme")
	if err != nil {
		t.Fatalf("DeleteTenant(acme): %v", err)
	}
	if deleted.ID != e.ID {
		t.Errorf("DeleteTenant(acme) = %+v, want the entry with id %d", deleted, e.ID)
	}
	if got := digests(t, h, opts, others); !slices.EqualFunc(got, before, mapsEqual) {
		t.Errorf("deleting acme changed other tenants' rows:\n got %v\nwant %v", got, before)
	}
	checkNothingLeft(t, h, opts, e)
	if _, err := admin.LookUpTenant(ctx, "acme"); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("LookUpTenant(acme) after delete: %v, want ErrTenantNotFound", err)
	}
	if _, err := admin.DeleteTenant(ctx, "acme"); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("DeleteTenant(acme) again: %v, want ErrTenantNotFound", err)
	}
	// The server that served acme may still remember its account (for
	// tenantcache.TTL); a request with it, a write or a page, is not found
	// at once, and the server forgets the tenant.
	err = s.Tx(TenantCtx(acct), func(tx *gorm.DB) error {
		return tx.Create(&models.Project{Name: "after the delete"}).Error
	})
	if !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("the running server's Tx(acme) after its delete: %v, want ErrTenantNotFound", err)
	}
	if page, err := s.ListSubtasks(TenantCtx(acct), 1, 10); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("the running server's ListSubtasks(acme) after its delete: total %d, %v; want ErrTenantNotFound", page.Total, err)
	}
	if a, err := s.TenantBySlug(ctx, "acme"); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("the running server's TenantBySlug(acme) after its delete = %+v, %v; want ErrTenantNotFound", a, err)
	}
	checkNothingLeft(t, h, opts, e)
	fresh, err := h.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if a, err := fresh.TenantBySlug(ctx, "acme"); !errors.Is(err, strategy.ErrTenantNotFound) {
		t.Errorf("a new server's TenantBySlug(acme) after delete = %+v, %v; want ErrTenantNotFound", a, err)
	}
	for _, a := range others {
		if page, err := fresh.ListSubtasks(TenantCtx(a), 1, 10); err != nil || page.Total == 0 {
			t.Errorf("%s after acme's delete: total %d, err %v", a.Slug, page.Total, err)
		}
	}

	// The slug can be used again, for a new, empty tenant.
	if _, err := admin.AddTenant(ctx, strategy.TenantSpec{Slug: "acme", Name: "Acme again"}); err != nil {
		t.Fatalf("AddTenant(acme) after its delete: %v", err)
	}
	again, err := fresh.TenantBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if page, err := fresh.ListSubtasks(TenantCtx(again), 1, 10); err != nil || page.Total != 0 {
		t.Errorf("acme made again: total %d, err %v; want nothing left of the first", page.Total, err)
	}
	if a, err := s.TenantBySlug(ctx, "acme"); err != nil || a.ID != again.ID {
		t.Errorf("the running server's TenantBySlug(acme) made again = %+v, %v; want id %d", a, err, again.ID)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkNothingLeft fails when anything of the deleted tenant e is left: its
// database (when it had one of its own), its schema and role, or a row.
func checkNothingLeft(t *testing.T, h Harness, opts strategy.Options, e strategy.TenantEntry) {
	t.Helper()
	database := h.TenantDatabase(opts, e.Slug)
	if database != opts.Database {
		n := Int64s(t, pgtest.Admin(t, "postgres"), `SELECT count(*) FROM pg_database WHERE datname = $1`, database)
		if n[0] != 0 {
			t.Errorf("database %s is still there after its tenant's delete", database)
		}
		return
	}
	db := pgtest.Admin(t, database)
	if h.TenantSchema != nil {
		if n := Int64s(t, db, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, h.TenantSchema(e.ID)); n[0] != 0 {
			t.Errorf("schema %s is still there after its tenant's delete", h.TenantSchema(e.ID))
		}
	}
	if h.TenantRole != nil {
		if n := Int64s(t, db, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, h.TenantRole(opts, e.ID)); n[0] != 0 {
			t.Errorf("role %s is still there after its tenant's delete", h.TenantRole(opts, e.ID))
		}
	}
	for _, d := range digestTables {
		var n int64
		err := db.QueryRow(`SELECT count(*) FROM public.`+d.table+` WHERE `+d.column+` = $1`, int64(e.ID)).Scan(&n)
		if pg.IsPgError(err, "42P01") || pg.IsPgError(err, "42703") {
			continue // not a shared table of this strategy
		}
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of the deleted tenant are left in %s", n, d.table)
		}
	}
}
