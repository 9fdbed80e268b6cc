package multischema_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multischema"
	"tenancy/strategy/strategytest"
)

// TestOpenRefusesUnsafeRoles: the server will not start as roles that
// could reach past one tenant's schema, as serve refuses them in the other
// strategies; each case is undone before the next.
func TestOpenRefusesUnsafeRoles(t *testing.T) {
	t.Parallel()
	h := multischema.Harness()
	opts, admin, s := strategytest.Deploy(t, h)
	strategytest.AddTenant(t, admin, s, "tenant-0", 1)
	db := pgtest.Admin(t, opts.Database)
	app, reader := pg.QuoteIdent(opts.AppUser), pg.QuoteIdent(opts.ReaderUser)
	tenantSchema, tenantRole := pg.QuoteIdent(multischema.SchemaOf(1)), pg.QuoteIdent(multischema.RoleOf(opts, 1))
	tests := []struct {
		name          string
		breakIt, undo string
		want          string // in the error
	}{
		{"app role a superuser", "ALTER ROLE " + app + " SUPERUSER", "ALTER ROLE " + app + " NOSUPERUSER", "superuser"},
		{"app role BYPASSRLS", "ALTER ROLE " + app + " BYPASSRLS", "ALTER ROLE " + app + " NOBYPASSRLS", "BYPASSRLS"},
		{"app role inherits the tenants' roles", "ALTER ROLE " + app + " INHERIT", "ALTER ROLE " + app + " NOINHERIT", "NOINHERIT"},
		{"app role may use a tenant's schema", "GRANT USAGE ON SCHEMA " + tenantSchema + " TO " + app, "REVOKE USAGE ON SCHEMA " + tenantSchema + " FROM " + app, "tenant_1"},
		{"app role may read accounts itself", "GRANT SELECT ON public.accounts TO " + app, "REVOKE SELECT ON public.accounts FROM " + app, "accounts"},
		{"app role may create roles", "ALTER ROLE " + app + " CREATEROLE", "ALTER ROLE " + app + " NOCREATEROLE", "CREATEROLE"},
		{"reader may write", "ALTER ROLE " + reader + " SET default_transaction_read_only = off", "ALTER ROLE " + reader + " SET default_transaction_read_only = on", "read-only"},
		{"a tenant's schema owned by its role", "ALTER SCHEMA " + tenantSchema + " OWNER TO " + tenantRole, "ALTER SCHEMA " + tenantSchema + " OWNER TO " + pg.QuoteIdent(opts.AdminUser), "owns"},
		{"reader may delete subtasks", "GRANT DELETE ON " + tenantSchema + ".subtasks TO " + reader, "REVOKE DELETE ON " + tenantSchema + ".subtasks FROM " + reader, "DELETE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strategytest.MustExec(t, db, tt.breakIt)
			defer strategytest.MustExec(t, db, tt.undo)
			fresh, err := multischema.Open(context.Background(), opts)
			if err == nil {
				fresh.Close()
				t.Fatalf("Open with %s succeeded; want it refused", tt.name)
			}
			unsafe := errors.Is(err, strategy.ErrUnsafeDeployment) || errors.Is(err, strategy.ErrUnsafeRole)
			if !unsafe || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open with %s: %v; want ErrUnsafeDeployment or ErrUnsafeRole mentioning %q", tt.name, err, tt.want)
			}
		})
	}
	// Undone, it opens: the refusals above were the breakages'.
	fresh, err := multischema.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open after every breakage was undone: %v", err)
	}
	fresh.Close()
}

// TestServerRefusesAnUnsafeTenantSchema: each tenant's schema and role are
// audited before the server first serves it; a tenant whose role could
// reach another schema, or whose schema lacks what the server needs, is
// unavailable (503) while the other tenant is served.
func TestServerRefusesAnUnsafeTenantSchema(t *testing.T) {
	t.Parallel()
	h := multischema.Harness()
	opts, admin, s := strategytest.Deploy(t, h)
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 1)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 1)
	db := pgtest.Admin(t, opts.Database)
	roleB, app := pg.QuoteIdent(multischema.RoleOf(opts, b.ID)), pg.QuoteIdent(opts.AppUser)
	schemaA, schemaB := pg.QuoteIdent(multischema.SchemaOf(a.ID)), pg.QuoteIdent(multischema.SchemaOf(b.ID))
	tests := []struct {
		name          string
		breakIt, undo string
		want          string // in the error
	}{
		{"its role may use another tenant's schema", "GRANT USAGE ON SCHEMA " + schemaA + " TO " + roleB, "REVOKE USAGE ON SCHEMA " + schemaA + " FROM " + roleB, multischema.SchemaOf(a.ID)},
		{"a grant revoked", "REVOKE SELECT ON " + schemaB + ".subtasks FROM " + roleB, "GRANT SELECT ON " + schemaB + ".subtasks TO " + roleB, "SELECT"},
		{"its role may TRUNCATE", "GRANT TRUNCATE ON " + schemaB + ".subtasks TO " + roleB, "REVOKE TRUNCATE ON " + schemaB + ".subtasks FROM " + roleB, "TRUNCATE"},
		{"the app role no longer a member of its role", "REVOKE " + roleB + " FROM " + app, "GRANT " + roleB + " TO " + app, "not a member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strategytest.MustExec(t, db, tt.breakIt)
			defer strategytest.MustExec(t, db, tt.undo)
			fresh, err := multischema.Open(context.Background(), opts)
			if err != nil {
				t.Fatalf("Open: %v (a tenant schema's fault must not stop the server)", err)
			}
			defer fresh.Close()
			if _, err := fresh.ListSubtasks(strategytest.TenantCtx(b), 1, 10); !errors.Is(err, strategy.ErrTenantUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("tenant-1 with %s: err = %v, want ErrTenantUnavailable mentioning %q", tt.name, err, tt.want)
			}
			if _, err := fresh.ListSubtasks(strategytest.TenantCtx(a), 1, 10); err != nil {
				t.Errorf("tenant-0 while tenant-1's schema has %s: %v", tt.name, err)
			}
		})
	}
}
