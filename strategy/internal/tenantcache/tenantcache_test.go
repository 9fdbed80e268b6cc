package tenantcache

import (
	"context"
	"errors"
	"testing"
	"time"

	"tenancy/models"
	"tenancy/strategy"
)

func TestAccountCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	loads := 0
	fail := false
	load := func(_ context.Context, slug string) (models.Account, error) {
		loads++
		if fail {
			return models.Account{}, strategy.ErrTenantNotFound
		}
		return models.Account{ID: models.TenantID(loads), Slug: slug}, nil
	}
	c := New[models.Account](10*time.Second, 2)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	get := func(slug string) models.Account {
		t.Helper()
		a, err := c.Get(ctx, slug, load)
		if err != nil {
			t.Fatalf("get %s: %v", slug, err)
		}
		return a
	}

	tests := []struct {
		name      string
		step      func()
		slug      string
		wantLoads int
	}{
		{"first lookup loads", func() {}, "tenant-1", 1},
		{"second lookup is cached", func() {}, "tenant-1", 1},
		{"still cached just before the TTL", func() { now = now.Add(9 * time.Second) }, "tenant-1", 1},
		{"reloaded after the TTL", func() { now = now.Add(2 * time.Second) }, "tenant-1", 2},
		{"another tenant", func() {}, "tenant-2", 3},
		{"a third fills past max: the cache is cleared, not grown", func() {}, "tenant-3", 4},
		{"so the first is loaded again", func() {}, "tenant-1", 5},
	}
	for _, tc := range tests {
		tc.step()
		a := get(tc.slug)
		if a.Slug != tc.slug || loads != tc.wantLoads {
			t.Errorf("%s: got %+v after %d loads, want slug %s after %d", tc.name, a, loads, tc.slug, tc.wantLoads)
		}
		if len(c.entries) > c.max {
			t.Errorf("%s: %d entries, max %d", tc.name, len(c.entries), c.max)
		}
	}

	// Failures are not cached: a made-up slug costs a lookup every time
	// and takes no room.
	fail = true
	for range 3 {
		if _, err := c.Get(ctx, "nobody", load); !errors.Is(err, strategy.ErrTenantNotFound) {
			t.Fatalf("get nobody: err = %v, want ErrTenantNotFound", err)
		}
	}
	if _, ok := c.entries["nobody"]; ok || loads != 8 {
		t.Errorf("after 3 failed lookups: cached %v, %d loads; want not cached, 8 loads", ok, loads)
	}
}
