package seedbench_test

import (
	"context"
	"strings"
	"testing"

	"tenancy/configs"
	"tenancy/internal/pgtest"
	"tenancy/internal/seedbench"
	"tenancy/seed"
	"tenancy/strategy"
)

func TestBenchMeasuresAndCleansUp(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, name, nil)
			cfg, err := configs.Load(pgtest.Getenv(env))
			if err != nil {
				t.Fatal(err)
			}
			o := seed.DefaultOptions()
			o.Accounts, o.MaxProjects = 3, 5
			var out strings.Builder
			res, err := seedbench.Run(context.Background(), seedbench.Options{Base: cfg.Strategy, Seed: o, Baseline: true}, &out, nil)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, out.String())
			}
			if !strings.HasPrefix(res.Database, cfg.Strategy.Database+"_bench_") {
				t.Errorf("benchmark database %q is not named after %q", res.Database, cfg.Strategy.Database)
			}
			if res.Seed.Counts.Accounts != 3 || res.Seed.Checksum == "" || res.PeakRSSKB <= 0 || res.Setup.Elapsed <= 0 {
				t.Errorf("result %+v: want 3 accounts, a checksum, a peak RSS and a setup time", res)
			}
			wantDBs := 1
			if name == strategy.MultiDB {
				wantDBs = 2 + 3 // the base database (the tenant directory), the template and the tenants
			}
			if len(res.Setup.Databases) != wantDBs {
				t.Errorf("setup reported %d databases, want %d", len(res.Setup.Databases), wantDBs)
			}
			switch name {
			case strategy.SingleSchema:
				if res.CopyRows != int64(res.Seed.Counts.Rows()) || res.CopyTime <= 0 || res.Ratio() <= 0 {
					t.Errorf("baseline copied %d rows in %s (ratio %.2f), want the %d seeded rows", res.CopyRows, res.CopyTime, res.Ratio(), res.Seed.Counts.Rows())
				}
			default:
				if res.CopyTime != 0 {
					t.Errorf("%s ran a COPY baseline", name)
				}
			}
			// Everything it made is gone.
			var left []string
			rows, err := pgtest.Admin(t, "postgres").Query(`SELECT datname FROM pg_database WHERE starts_with(datname, $1)
				UNION ALL SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`, res.Database)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				left = append(left, n)
			}
			if len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
