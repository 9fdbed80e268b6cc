package strategy

import "testing"

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
