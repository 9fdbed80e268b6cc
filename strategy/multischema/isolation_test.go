package multischema_test

import (
	"context"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multischema"
	"tenancy/strategy/strategytest"
)

// TestPostgreSQLRefusesOtherTenantsSchemas: the boundary is PostgreSQL's,
// not the application's. As tenant A (through the strategy's own Tx), a
// statement naming tenant B's schema is refused; with no tenant taken on,
// the app role resolves no tenant table and may use no tenant schema. The
// last case grants A's role USAGE and SELECT on B's schema, as a broken
// migration might, and sees B's rows: the refusals above are the grants'
// doing, and the test would go red without them.
func TestPostgreSQLRefusesOtherTenantsSchemas(t *testing.T) {
	t.Parallel()
	opts, admin, s := strategytest.Deploy(t, multischema.Harness())
	a := strategytest.AddTenant(t, admin, s, "tenant-0", 2)
	b := strategytest.AddTenant(t, admin, s, "tenant-1", 3)
	schemaB := pg.QuoteIdent(multischema.SchemaOf(b.ID))
	asA := func(query string) (int64, error) {
		var n int64
		err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error { return tx.Raw(query).Scan(&n).Error })
		return n, err
	}
	noTenant := pgtest.Open(t, opts.AppUser, "", opts.Database)
	asApp := func(query string) (int64, error) {
		var n int64
		err := noTenant.QueryRowContext(context.Background(), query).Scan(&n)
		return n, err
	}
	tests := []struct {
		name string
		run  func(string) (int64, error)
		sql  string
		code string // the SQLSTATE PostgreSQL refuses with
	}{
		{"tenant A names B's schema", asA, "SELECT count(*) FROM " + schemaB + ".subtasks", "42501"},
		{"tenant A names B's schema in a join", asA, "SELECT count(*) FROM subtasks s JOIN " + schemaB + ".tasks t ON t.id = s.task_id", "42501"},
		{"no tenant, bare name", asApp, "SELECT count(*) FROM subtasks", "42P01"},
		{"no tenant, B's schema named", asApp, "SELECT count(*) FROM " + schemaB + ".subtasks", "42501"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := tt.run(tt.sql)
			if !pg.IsPgError(err, tt.code) {
				t.Errorf("%s: %d rows, err %v; want PostgreSQL to refuse it (%s)", tt.sql, n, err, tt.code)
			}
		})
	}
	if n, err := asA("SELECT count(*) FROM subtasks"); err != nil || n != 2 {
		t.Fatalf("tenant A's own subtasks: %d, %v; want 2", n, err)
	}

	t.Run("with B's schema granted to A's role, A reads B", func(t *testing.T) {
		db := pgtest.Admin(t, opts.Database)
		roleA := pg.QuoteIdent(multischema.RoleOf(opts, a.ID))
		strategytest.MustExec(t, db, fmt.Sprintf("GRANT USAGE ON SCHEMA %[1]s TO %[2]s; GRANT SELECT ON %[1]s.subtasks TO %[2]s", schemaB, roleA))
		defer strategytest.MustExec(t, db, fmt.Sprintf("REVOKE USAGE ON SCHEMA %[1]s FROM %[2]s; REVOKE SELECT ON %[1]s.subtasks FROM %[2]s", schemaB, roleA))
		if n, err := asA("SELECT count(*) FROM " + schemaB + ".subtasks"); err != nil || n != 3 {
			t.Errorf("tenant A reading B's subtasks with B's schema granted: %d, %v; want B's 3 rows (the grant is the boundary)", n, err)
		}
	})
}
