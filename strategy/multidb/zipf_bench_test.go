package multidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tenancy/configs"
	"tenancy/internal/loadcheck"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
)

// BenchmarkZipfTenantPages serves tenant list pages for Zipf-skewed
// tenants (s = 1.1: a few busy, most nearly idle) from 16 goroutines, as a
// multidb server does under load, two ways:
//
//   - direct: the server's own pool policy (pools.go) against PostgreSQL,
//     holding at most MULTIDB_OPEN_CONNS connections (ZIPF_BENCH_OPEN,
//     default 200), least recently used pools evicted;
//   - pgbouncer: the alternative a user would reach for: PgBouncer in
//     transaction mode between them, holding at most ZIPF_BENCH_OPEN
//     server connections for the app role (max_user_connections) and
//     ZIPF_BENCH_PER_DB per tenant database (max_db_connections, default
//     2); the server's pools are then cheap client connections to
//     PgBouncer, and it may keep one per tenant.
//
// Besides ns/op (one page) it reports pages/s, the p99 latency, the most
// server connections the app role held (pg_stat_activity, sampled) and
// the connections PostgreSQL opened per second (pg_stat_database's
// sessions): where the time goes when a tenant's connection is not warm.
//
//	ZIPF_BENCH_TENANTS=1000 go test -run '^$' -bench ZipfTenantPages -benchtime 20000x -timeout 60m ./strategy/multidb
//
// ZIPF_BENCH_TENANTS sets the number of tenant databases (default 50).
// The server needs max_connections above ZIPF_BENCH_OPEN plus its
// reserve (a throwaway cluster; see docs/many-tenants.md).
func BenchmarkZipfTenantPages(b *testing.B) {
	tenants := envInt(b, "ZIPF_BENCH_TENANTS", 50)
	open := envInt(b, "ZIPF_BENCH_OPEN", 200)
	perDB := envInt(b, "ZIPF_BENCH_PER_DB", 2)
	ctx := context.Background()
	cfg, err := configs.Load(pgtest.Getenv(pgtest.Env(b, strategy.MultiDB, map[string]string{"MULTIDB_COUNT": strconv.Itoa(tenants)})))
	if err != nil {
		b.Fatal(err)
	}
	opts := cfg.Strategy
	admin, err := NewAdmin(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	start := time.Now()
	if _, err := admin.Setup(ctx, nil); err != nil {
		b.Fatal(err)
	}
	so := seed.DefaultOptions()
	so.Accounts = tenants
	seeder, err := seed.NewSeeder(admin, tenants, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := seeder.Run(ctx, so); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d tenant databases set up and seeded in %s", tenants, time.Since(start).Round(time.Second))
	slugs := make([]string, tenants)
	for i := range slugs {
		slugs[i] = strategy.Slug(i)
	}
	cdf := loadcheck.ZipfCDF(tenants, 1.1)
	monitor := pgtest.Admin(b, "postgres")

	for _, way := range []string{"direct", "pgbouncer"} {
		b.Run(way, func(b *testing.B) {
			o := opts
			o.TenantConns = open
			if way == "pgbouncer" {
				bouncer := pgtest.StartPgBouncer(b, pgtest.BouncerOptions{
					ServerHost: opts.Host, ServerPort: opts.Port, Users: []string{opts.AppUser},
					PoolSize: perDB, MaxDBConns: perDB, MaxUserConns: open,
				})
				o.Host, o.Port, o.QueryExecMode = "127.0.0.1", bouncer.Port, "exec"
				o.TenantConns = tenants * o.Budget() // client connections: cheap
			}
			s, err := Open(ctx, o)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			accounts := make([]models.Account, tenants)
			for i, slug := range slugs {
				if accounts[i], err = s.TenantBySlug(ctx, slug); err != nil {
					b.Fatal(err)
				}
			}
			held := watchHeld(monitor, opts.AppUser)
			sessions := sessionsOf(b, monitor, opts.Database)
			var mu sync.Mutex
			var latencies []time.Duration
			var seq atomic.Uint64
			b.SetParallelism(8) // 8 x GOMAXPROCS (2 here) = 16 goroutines
			b.ResetTimer()
			began := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seq.Add(1), 7))
				var mine []time.Duration
				for pb.Next() {
					i, _ := slices.BinarySearch(cdf, rng.Float64())
					t := accounts[min(i, tenants-1)]
					t0 := time.Now()
					if _, err := s.ListSubtasks(models.NewContextWithTenant(ctx, t), 1+rng.IntN(3), 10); err != nil && !isPastLastPage(err) {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(began)
			b.StopTimer()
			most := held()
			opened := sessionsOf(b, monitor, opts.Database) - sessions
			slices.Sort(latencies)
			if len(latencies) > 0 {
				b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "pages/s")
				b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
			}
			b.ReportMetric(float64(most), "server-conns")
			b.ReportMetric(float64(opened)/elapsed.Seconds(), "conns-opened/s")
			f := s.pools.figures()
			b.ReportMetric(float64(f.EvictedPools), "pools-evicted")
		})
	}
}

func isPastLastPage(err error) bool { return errors.Is(err, strategy.ErrPageNotFound) }

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a whole number of at least 1", name, v)
	}
	return n
}

// watchHeld samples how many connections role holds until the returned
// function is called, which returns the most seen.
func watchHeld(db *sql.DB, role string) func() int {
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		most := 0
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role).Scan(&n); err == nil {
				most = max(most, n)
			}
			select {
			case <-stop:
				done <- most
				return
			case <-tick.C:
			}
		}
	}()
	return func() int { close(stop); return <-done }
}

// sessionsOf is how many sessions PostgreSQL has counted on the
// deployment's databases.
func sessionsOf(b *testing.B, db *sql.DB, prefix string) int64 {
	var n int64
	if err := db.QueryRow(`SELECT coalesce(sum(sessions), 0)::bigint FROM pg_stat_database
		WHERE datname = $1 OR starts_with(datname, $1 || '_')`, prefix).Scan(&n); err != nil {
		b.Fatal(fmt.Errorf("read pg_stat_database: %w", err))
	}
	return n
}
