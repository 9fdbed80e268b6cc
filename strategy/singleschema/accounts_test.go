package singleschema

import (
	"context"
	"errors"
	"testing"
	"time"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/tenantcache"
	"tenancy/strategy/strategytest"
)

// TestStaleAccountIsNotServed: a cached slug whose account id now belongs
// to another account (as after a delete and re-create, were ids reused)
// must not be served that account's rows, and the entry must go.
func TestStaleAccountIsNotServed(t *testing.T) {
	t.Parallel()
	_, admin, s := strategytest.Deploy(t, Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 3)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 3)
	ss := s.(*Server)
	// Make tenant-1's entry name tenant-0's id, as a reused id would: a
	// cache whose entries last an hour, given the stale account as
	// tenant-1's.
	stale := b
	stale.ID = a.ID
	ss.accounts = tenantcache.New[models.Account](time.Hour, tenantcache.MaxEntries)
	if got, err := ss.accounts.Get(context.Background(), b.Slug, func(context.Context, string) (models.Account, error) { return stale, nil }); err != nil || got.ID != a.ID {
		t.Fatalf("caching the stale entry: got id %d (err %v), want %d", got.ID, err, a.ID)
	}
	page, err := s.ListSubtasks(strategytest.TenantCtx(stale), 1, 10)
	if !errors.Is(err, strategy.ErrUnavailable) || len(page.Rows) != 0 {
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
	_, admin, s := strategytest.Deploy(t, Harness())
	before := strategytest.AddTenant(t, admin, s, "tenant-0", 1)
	if _, err := admin.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := strategytest.AddTenant(t, admin, s, "tenant-1", 1)
	if after.ID <= before.ID {
		t.Errorf("account id after reset = %d, before = %d: ids were reused", after.ID, before.ID)
	}
}
