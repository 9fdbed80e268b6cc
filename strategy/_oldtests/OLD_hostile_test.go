package strategy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzParseSlug: no panic; an accepted slug is the one canonical spelling
// of its tenant's number, so no two spellings reach the same tenant.
func FuzzParseSlug(f *testing.F) {
	for _, s := range []string{"tenant-0", "tenant-1", "tenant-01", "tenant--1", "tenant-+1", "TENANT-1", "tenant-1 ",
		"tenant-999999999", "tenant-9999999999", "t\u0435nant-1", "tenant-\uff11", "tenant-1'; drop table x;--", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, slug string) {
		i, ok := ParseSlug(slug)
		switch {
		case !ok && i != 0:
			t.Fatalf("ParseSlug(%q) = %d, false; want 0", slug, i)
		case ok && (i < 0 || Slug(i) != slug):
			t.Fatalf("ParseSlug(%q) = %d, true; want the slug to be Slug(%d) = %q", slug, i, i, Slug(i))
		}
	})
}

// TestTenantBySlugRefusesHostileSlugs gives each strategy's TenantBySlug,
// against a real database, slugs that the web layer would already refuse:
// the strategy must answer "not found", never run them as SQL or fail
// otherwise, and the tenant must still be there afterwards.
func TestTenantBySlugRefusesHostileSlugs(t *testing.T) {
	t.Parallel()
	hostile := []string{
		"tenant-1'; DROP TABLE accounts;--", "tenant-1' OR '1'='1", "' OR 1=1 --", `tenant-1"`, "tenant-1;",
		"tenant-01", "tenant--1", "tenant-+1", "TENANT-1", "tenant-1 ", " tenant-1",
		"t\u0435nant-1", "tenant-\uff11", "tenant-1\x00", "tenant-1\n", "", "%", "tenant-%", "tenant-_",
		"tenant-9999999999", "tenant-2", strings.Repeat("a", 10000),
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, admin, s := deploy(t, name)
			addTenant(t, admin, s, "tenant-1", 2)
			ctx := context.Background()
			for _, slug := range hostile {
				if acct, err := s.TenantBySlug(ctx, slug); !errors.Is(err, ErrTenantNotFound) {
					t.Errorf("%s: TenantBySlug(%q) = %+v, %v; want ErrTenantNotFound", name, slug, acct, err)
				}
			}
			acct, err := s.TenantBySlug(ctx, "tenant-1")
			if err != nil || acct.Slug != "tenant-1" {
				t.Fatalf("%s: TenantBySlug(tenant-1) after the hostile ones = %+v, %v", name, acct, err)
			}
			if page, err := s.ListSubtasks(tenantCtx(acct), 1, 10); err != nil || page.Total != 2 {
				t.Errorf("%s: tenant-1's list after the hostile slugs: total %d, err %v; want 2", name, page.Total, err)
			}
		})
	}
}
