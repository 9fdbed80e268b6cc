package strategy

import (
	"context"
	"errors"
	"testing"
	"time"

	"tenancy/models"
)

func TestAccountCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	loads := 0
	fail := false
	load := func(_ context.Context, slug string) (models.Account, error) {
		loads++
		if fail {
			return models.Account{}, ErrTenantNotFound
		}
		return models.Account{ID: models.TenantID(loads), Slug: slug}, nil
	}
	c := newAccountCache(10*time.Second, 2)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	get := func(slug string) models.Account {
		t.Helper()
		a, err := c.get(ctx, slug, load)
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
		if _, err := c.get(ctx, "nobody", load); !errors.Is(err, ErrTenantNotFound) {
			t.Fatalf("get nobody: err = %v, want ErrTenantNotFound", err)
		}
	}
	if _, ok := c.entries["nobody"]; ok || loads != 8 {
		t.Errorf("after 3 failed lookups: cached %v, %d loads; want not cached, 8 loads", ok, loads)
	}
}

// TestStaleAccountIsNotServed: a cached slug whose account id now belongs
// to another account (as after a delete and re-create, were ids reused)
// must not be served that account's rows, and the entry must go.
func TestStaleAccountIsNotServed(t *testing.T) {
	t.Parallel()
	_, admin, s := deploy(t, SingleSchema)
	a := addTenant(t, admin, s, "tenant-0", 3)
	b := addTenant(t, admin, s, "tenant-1", 3)
	ss := s.(*singleSchema)
	// Make tenant-1's entry name tenant-0's id, as a reused id would.
	stale := b
	stale.ID = a.ID
	ss.accounts.mu.Lock()
	ss.accounts.entries[b.Slug] = cachedAccount{account: stale, expires: time.Now().Add(time.Hour)}
	ss.accounts.mu.Unlock()
	page, err := s.ListSubtasks(tenantCtx(stale), 1, 10)
	if !errors.Is(err, ErrUnavailable) || len(page.Rows) != 0 {
		t.Fatalf("list as a stale tenant-1: %d rows, err %v; want none and ErrUnavailable", len(page.Rows), err)
	}
	got, err := s.TenantBySlug(context.Background(), b.Slug)
	if err != nil || got.ID != b.ID {
		t.Errorf("after the mismatch, tenant-1 resolves to id %d (err %v); want %d", got.ID, err, b.ID)
	}
}

// TestResetDoesNotReuseAccountIDs: after a reset, new accounts get new ids,
// so a server's cached slug-to-id entries cannot point at another tenant.
func TestResetDoesNotReuseAccountIDs(t *testing.T) {
	t.Parallel()
	_, admin, s := deploy(t, SingleSchema)
	before := addTenant(t, admin, s, "tenant-0", 1)
	if _, err := admin.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := addTenant(t, admin, s, "tenant-1", 1)
	if after.ID <= before.ID {
		t.Errorf("account id after reset = %d, before = %d: ids were reused", after.ID, before.ID)
	}
}
