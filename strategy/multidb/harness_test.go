package multidb

import (
	"context"

	"tenancy/strategy"
	"tenancy/strategy/multidb/directory"
	"tenancy/strategy/multidb/migrations"
	"tenancy/strategy/strategytest"
)

// Harness is multidb as the conformance suite and this package's tests
// open it.
func Harness() strategytest.Harness {
	return strategytest.Harness{
		Name:           strategy.MultiDB,
		Open:           func(ctx context.Context, o strategy.Options) (strategy.Strategy, error) { return openStrategy(ctx, o) },
		OpenAdmin:      func(o strategy.Options) (strategy.Admin, error) { return NewAdmin(o) },
		TenantDatabase: func(o strategy.Options, slug string) string { return o.Database + "_" + slug },
		Databases: func(o strategy.Options) []string {
			dbs := []string{o.Database, o.Database + "_tenant-template"}
			for i := range o.TenantCount {
				dbs = append(dbs, o.TenantDatabase(i))
			}
			return dbs
		},
		RememberTotal: func(s strategy.Strategy, slug string, total int64) {
			if total < 0 {
				s.(*Server).pages.Forget(slug)
			} else {
				s.(*Server).pages.Remember(slug, total)
			}
		},
		Migrations:       migrations.FS(),
		SharedMigrations: directory.Migrations(),
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
