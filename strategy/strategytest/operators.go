package strategytest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// testOperatorsBelongToNoTenant: an operator is found by email (without
// case) whatever the context's tenant, is no user of any tenant, and a
// tenant user's email is no operator's; the admin creates, lists and
// deletes operators, and the app role can do none of that itself.
func testOperatorsBelongToNoTenant(t *testing.T, h Harness) {
	opts, admin, s := Deploy(t, h)
	ctx := context.Background()
	const op, user = "ops@example.com", "user@example.com"
	a := AddTenantWithUsers(t, admin, s, "tenant-0", user)
	created, err := admin.CreateOperator(ctx, op, "marker-operator")
	if err != nil || created.ID == 0 || created.Email != op {
		t.Fatalf("CreateOperator(%q) = %+v, %v; want the operator with an id", op, created, err)
	}
	if _, err := admin.CreateOperator(ctx, "OPS@example.com", "other"); !errors.Is(err, strategy.ErrOperatorExists) {
		t.Errorf("CreateOperator(OPS@example.com) after %s: err = %v, want ErrOperatorExists", op, err)
	}
	for _, tc := range []struct {
		ctx   context.Context
		email string
		found bool
	}{
		{ctx, op, true},
		{ctx, "Ops@Example.com", true},
		{TenantCtx(a), op, true},
		{AllTenantsCtx(), op, true},
		{ctx, user, false},
		{TenantCtx(a), user, false},
		{ctx, "", false},
		{ctx, "' OR '1'='1", false},
	} {
		got, err := s.OperatorByEmail(tc.ctx, tc.email)
		switch {
		case tc.found && (err != nil || got.ID != created.ID || got.Password != "marker-operator"):
			t.Errorf("OperatorByEmail(%q) = %+v, %v; want operator %d", tc.email, got, err, created.ID)
		case !tc.found && !errors.Is(err, strategy.ErrOperatorNotFound):
			t.Errorf("OperatorByEmail(%q) = %+v, %v; want ErrOperatorNotFound", tc.email, got, err)
		}
	}
	if u, err := s.UserByEmail(TenantCtx(a), op); !errors.Is(err, strategy.ErrUserNotFound) {
		t.Errorf("UserByEmail(%s, operator %q) = %+v, %v; want ErrUserNotFound", a.Slug, op, u, err)
	}

	// The server's role reads operators; only the admin writes them.
	app := pgtest.Open(t, opts.AppUser, opts.AppPassword, opts.Database)
	for _, stmt := range []string{
		"INSERT INTO public.operators (email, password) VALUES ('mallory@example.com', 'x')",
		"UPDATE public.operators SET password = 'x'",
		"DELETE FROM public.operators",
	} {
		if _, err := app.ExecContext(ctx, stmt); !pg.IsPgError(err, "42501") {
			t.Errorf("%s as the app role: err = %v, want permission denied", stmt, err)
		}
	}

	list, err := admin.Operators(ctx)
	if err != nil || len(list) != 1 || list[0].Email != op || list[0].Password != "" {
		t.Errorf("Operators() = %+v, %v; want %s alone, without its hash", list, err, op)
	}
	if err := admin.DeleteOperator(ctx, "OPS@example.com"); err != nil {
		t.Errorf("DeleteOperator(OPS@example.com): %v", err)
	}
	if _, err := s.OperatorByEmail(ctx, op); !errors.Is(err, strategy.ErrOperatorNotFound) {
		t.Errorf("OperatorByEmail(%q) after DeleteOperator: err = %v, want ErrOperatorNotFound", op, err)
	}
	if err := admin.DeleteOperator(ctx, op); !errors.Is(err, strategy.ErrOperatorNotFound) {
		t.Errorf("DeleteOperator(%q) twice: err = %v, want ErrOperatorNotFound", op, err)
	}
}

// testRevokedSessionsAreShared: a session revoked through one server is
// listed by another over the same deployment until it expires; expired
// records are purged by the next revocation.
func testRevokedSessionsAreShared(t *testing.T, h Harness) {
	opts, _, s := Deploy(t, h)
	other, err := h.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open (second server): %v", err)
	}
	t.Cleanup(func() { other.Close() })
	ctx := context.Background()
	now := time.Now()
	const live, dead, later = "live-session-0123456789", "dead-session-0123456789", "later-session-0123456789"
	for _, r := range []struct {
		id      string
		expires time.Time
	}{{dead, now.Add(-time.Minute)}, {live, now.Add(time.Hour)}, {live, now.Add(time.Hour)}} {
		if err := s.RevokeSession(ctx, r.id, r.expires); err != nil {
			t.Fatalf("RevokeSession(%s): %v", r.id, err)
		}
	}
	ids := func(srv strategy.Strategy, since time.Time) []string {
		t.Helper()
		got, err := srv.RevokedSessions(ctx, since)
		if err != nil {
			t.Fatalf("RevokedSessions: %v", err)
		}
		var out []string
		for _, r := range got {
			out = append(out, r.ID)
		}
		return out
	}
	if got := ids(other, time.Time{}); !slices.Equal(got, []string{live}) {
		t.Errorf("RevokedSessions on another server = %v, want [%s] (the expired one left out)", got, live)
	}
	all, _ := other.RevokedSessions(ctx, time.Time{})
	if len(all) != 1 {
		t.Fatalf("RevokedSessions = %+v, want one", all)
	}
	if err := other.RevokeSession(ctx, later, now.Add(time.Hour)); err != nil {
		t.Fatalf("RevokeSession(%s): %v", later, err)
	}
	if got := ids(s, all[0].RevokedAt.Add(time.Microsecond)); !slices.Equal(got, []string{later}) {
		t.Errorf("RevokedSessions(since after %s) = %v, want [%s]", live, got, later)
	}
	var left int
	if err := pgtest.Admin(t, opts.Database).QueryRow(`SELECT count(*) FROM public.revoked_sessions WHERE id = $1`, dead).Scan(&left); err != nil || left != 0 {
		t.Errorf("expired revocation still stored after another sign-out: %d rows (err %v), want purged", left, err)
	}
	if _, err := s.OperatorByEmail(models.NewContextForAllTenants(ctx), "nobody@example.com"); !errors.Is(err, strategy.ErrOperatorNotFound) {
		t.Errorf("OperatorByEmail(nobody) = %v, want ErrOperatorNotFound", err)
	}
}
