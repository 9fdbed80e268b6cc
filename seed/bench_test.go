package seed_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"tenancy/configs"
	"tenancy/internal/pgtest"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

// BenchmarkSeed seeds the default options into fresh databases of each
// strategy (each iteration resets first) and reports rows/s, so later
// changes can be compared with benchstat. singleschema-per-account has an
// account outside the range there first, so that the seed loads one
// account per transaction, as into any singleschema database with rows.
// SEED_BENCH_ACCOUNTS sets the accounts (default 200, and at most 100 for
// multidb, one database each):
//
//	go test -run '^$' -bench Seed -benchtime 3x ./seed
func BenchmarkSeed(b *testing.B) {
	accounts := 200
	if v := os.Getenv("SEED_BENCH_ACCOUNTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("SEED_BENCH_ACCOUNTS=%q: want a positive number", v)
		}
		accounts = n
	}
	tests := []struct {
		name, strategy string
		preload        bool
	}{
		{strategy.MultiDB, strategy.MultiDB, false},
		{strategy.SingleSchema, strategy.SingleSchema, false},
		{"singleschema-per-account", strategy.SingleSchema, true},
	}
	for _, tt := range tests {
		name := tt.strategy
		b.Run(tt.name, func(b *testing.B) {
			n := accounts
			if name == strategy.MultiDB {
				n = min(n, 100)
			}
			cfg, err := configs.Load(pgtest.Getenv(pgtest.Env(b, name, map[string]string{"MULTIDB_COUNT": strconv.Itoa(n)})))
			if err != nil {
				b.Fatal(err)
			}
			admin, err := strategies.OpenAdmin(cfg.Strategy)
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close()
			ctx := context.Background()
			if _, err := admin.Setup(ctx, nil); err != nil {
				b.Fatal(err)
			}
			s, err := seed.NewSeeder(admin, cfg.Strategy.TenantCount, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			o := seed.DefaultOptions()
			o.Accounts = n
			o.Reset = !tt.preload
			rows := 0
			b.ResetTimer()
			for b.Loop() {
				if tt.preload {
					b.StopTimer()
					if _, err := admin.Reset(ctx); err != nil {
						b.Fatal(err)
					}
					other := seed.Generate(o, n, "")
					if err := admin.LoadTenant(ctx, &other, true); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				res, err := s.Run(ctx, o)
				if err != nil {
					b.Fatal(err)
				}
				rows += res.Counts.Rows()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
		})
	}
}
