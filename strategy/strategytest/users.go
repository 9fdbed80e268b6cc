package strategytest

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
)

// AddTenantWithUsers creates slug with a user per email, whose stored
// password hash is "<hash>-<slug>-<email>" (a marker, not a real hash:
// the suite checks which row came back), and returns the account as the
// server sees it.
func AddTenantWithUsers(t testing.TB, admin strategy.Admin, s strategy.Strategy, slug string, emails ...string) models.Account {
	t.Helper()
	ctx := context.Background()
	err := admin.CreateTenant(ctx, models.Account{Slug: slug, Name: "Account " + slug}, true, func(tx *gorm.DB) error {
		for _, e := range emails {
			u := models.User{Email: e, FirstName: "F", LastName: "L", Password: UserMarker(slug, e), IsActive: true, DateJoined: time.Unix(0, 0).UTC()}
			if err := tx.Create(&u).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("CreateTenant(%s): %v", slug, err)
	}
	acct, err := s.TenantBySlug(ctx, slug)
	if err != nil {
		t.Fatalf("TenantBySlug(%s): %v", slug, err)
	}
	return acct
}

// UserMarker is what AddTenantWithUsers stores as the password of email's
// user in tenant slug.
func UserMarker(slug, email string) string { return "marker-" + slug + "-" + email }

// testUserByEmailStaysInTheTenant: a tenant finds its own users by email
// and no one else's, even when another tenant has a user with the same
// email; without a tenant it is an error, not a search of every tenant.
func testUserByEmailStaysInTheTenant(t *testing.T, h Harness) {
	_, admin, s := Deploy(t, h)
	const shared, onlyA, onlyB = "same@example.com", "a@example.com", "b@example.com"
	a := AddTenantWithUsers(t, admin, s, "tenant-0", shared, onlyA)
	b := AddTenantWithUsers(t, admin, s, "tenant-1", shared, onlyB)
	for _, tc := range []struct {
		tenant     models.Account
		email      string
		wantMarker string // "" for ErrUserNotFound
	}{
		{a, shared, UserMarker(a.Slug, shared)},
		{b, shared, UserMarker(b.Slug, shared)},
		{a, onlyA, UserMarker(a.Slug, onlyA)},
		{b, onlyA, ""},
		{a, onlyB, ""},
		{b, onlyB, UserMarker(b.Slug, onlyB)},
		{a, "SAME@example.com", ""},
		{a, "", ""},
		{a, "' OR '1'='1", ""},
	} {
		u, err := s.UserByEmail(TenantCtx(tc.tenant), tc.email)
		switch {
		case tc.wantMarker == "" && !errors.Is(err, strategy.ErrUserNotFound):
			t.Errorf("UserByEmail(%s, %q) = %+v, %v; want ErrUserNotFound", tc.tenant.Slug, tc.email, u, err)
		case tc.wantMarker != "" && (err != nil || u.Password != tc.wantMarker || u.AccountID != tc.tenant.ID || u.Email != tc.email):
			t.Errorf("UserByEmail(%s, %q) = %+v, %v; want the user of account %d stored with %q", tc.tenant.Slug, tc.email, u, err, tc.tenant.ID, tc.wantMarker)
		}
	}
	for _, ctx := range []context.Context{context.Background(), AllTenantsCtx()} {
		if u, err := s.UserByEmail(ctx, shared); !errors.Is(err, strategy.ErrNoTenant) {
			t.Errorf("UserByEmail(no tenant / all tenants, %q) = %+v, %v; want ErrNoTenant", shared, u, err)
		}
	}
	if u, err := s.UserByEmail(TenantCtx(models.Account{ID: 999, Slug: "tenant-999"}), shared); err == nil {
		t.Errorf("UserByEmail(unknown tenant-999, %q) = %+v, nil; want an error", shared, u)
	}
}
