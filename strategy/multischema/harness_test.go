package multischema

import (
	"context"
	"fmt"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/multischema/migrations"
	"tenancy/strategy/strategytest"
)

// Harness is multischema as the conformance suite and this package's
// tests open it.
func Harness() strategytest.Harness {
	return strategytest.Harness{
		Name:           strategy.MultiSchema,
		Open:           func(ctx context.Context, o strategy.Options) (strategy.Strategy, error) { return openStrategy(ctx, o) },
		OpenAdmin:      func(o strategy.Options) (strategy.Admin, error) { return NewAdmin(o) },
		TenantDatabase: func(o strategy.Options, _ string) string { return o.Database },
		TenantSchema:   SchemaOf,
		TenantRole:     RoleOf,
		TenantTx: func(o strategy.Options, a models.Account) []string {
			return []string{fmt.Sprintf("SELECT set_config('role', '%s', true), set_config('search_path', '%s, public', true)", RoleOf(o, a.ID), SchemaOf(a.ID))}
		},
		Databases:        func(o strategy.Options) []string { return []string{o.Database} },
		Migrations:       migrations.Tenant(),
		SharedMigrations: migrations.Shared(),
		RememberTotal: func(s strategy.Strategy, slug string, total int64) {
			if total < 0 {
				s.(*Server).pages.Forget(slug)
			} else {
				s.(*Server).pages.Remember(slug, total)
			}
		},
		ThroughPgBouncer: true,
		ResetDropsTables: true,
	}
}

// openStrategy is Open as a strategy.Strategy, nil when it fails.
func openStrategy(ctx context.Context, o strategy.Options) (strategy.Strategy, error) {
	s, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	return s, nil
}
