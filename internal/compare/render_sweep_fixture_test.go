package compare

import (
	"time"
)

// The sweep fixture: three strategies at 10, 100 and 1,000 tenants, with
// figures chosen so that the reading's answers are known:
//   - setup grows 150× under multidb (2 s → 5m0s), 60× under multischema,
//     1.7× under singleschema: fastest under multidb, more than in
//     proportion to the tenants (100×);
//   - each added tenant brings 350 catalog entries under multidb, 46 under
//     multischema and none under singleschema;
//   - Zipf throughput falls to 0.4× under multidb and holds up under the
//     others;
//   - multidb holds the most connections at 1,000 tenants (250).

var sweepSizes = []int{10, 100, 1000}

// fixtureFigures are one strategy's figures at one size of sweepSizes.
type fixtureFigures struct {
	setup, seed, noop, change time.Duration
	bytes, catalog            int64
	conns, backends           int
	backendKB, rssKB          int64
	uniform, zipf             float64 // req/s
	uniformP50, uniformP99    time.Duration
	zipfP50, zipfP99          time.Duration
	sessions                  int64 // opened during each tenant-page load
	hit, read                 int64
	mostConns                 int
	coldFirst, coldSecond     time.Duration
	reportMedian, reportMax   time.Duration
	unreachable               int
}

var sweepFixture = map[string][3]fixtureFigures{
	"multidb": {
		{setup: 2 * time.Second, seed: time.Second, noop: 200 * ms, change: 400 * ms, bytes: 90 << 20, catalog: 4200,
			conns: 30, backends: 30, backendKB: 30 * 2048, rssKB: 40 << 10,
			uniform: 3000, zipf: 3000, uniformP50: 2 * ms, uniformP99: 9 * ms, zipfP50: 2 * ms, zipfP99: 8 * ms,
			sessions: 50, hit: 99_000, read: 1000, mostConns: 30,
			coldFirst: 20 * ms, coldSecond: 2 * ms, reportMedian: 30 * ms, reportMax: 60 * ms},
		{setup: 20 * time.Second, seed: 8 * time.Second, noop: 2 * time.Second, change: 4 * time.Second, bytes: 800 << 20, catalog: 35_700,
			conns: 210, backends: 200, backendKB: 200 * 2048, rssKB: 60 << 10,
			uniform: 2000, zipf: 2400, uniformP50: 3 * ms, uniformP99: 20 * ms, zipfP50: 2500 * time.Microsecond, zipfP99: 15 * ms,
			sessions: 2000, hit: 990_000, read: 60_000, mostConns: 200,
			coldFirst: 40 * ms, coldSecond: 2 * ms, reportMedian: 300 * ms, reportMax: 500 * ms},
		{setup: 5 * time.Minute, seed: 75 * time.Second, noop: 9 * time.Second, change: 50 * time.Second, bytes: 8 << 30, catalog: 350_700,
			conns: 250, backends: 250, backendKB: 250 * 3072, rssKB: 120 << 10,
			uniform: 500, zipf: 1200, uniformP50: 10 * ms, uniformP99: 120 * ms, zipfP50: 5 * ms, zipfP99: 60 * ms,
			sessions: 9000, hit: 9_000_000, read: 1_000_000, mostConns: 250,
			coldFirst: 90 * ms, coldSecond: 3 * ms, reportMedian: 3 * time.Second, reportMax: 5 * time.Second, unreachable: 3},
	},
	"multischema": {
		{setup: 500 * ms, seed: time.Second, noop: 50 * ms, change: 100 * ms, bytes: 9 << 20, catalog: 810,
			conns: 10, backends: 10, backendKB: 10 * 1024, rssKB: 40 << 10,
			uniform: 2500, zipf: 2500, uniformP50: 2 * ms, uniformP99: 10 * ms, zipfP50: 2 * ms, zipfP99: 10 * ms,
			sessions: 10, hit: 99_900, read: 100, mostConns: 10,
			coldFirst: 8 * ms, coldSecond: 2 * ms, reportMedian: 20 * ms, reportMax: 30 * ms},
		{setup: 3 * time.Second, seed: 7 * time.Second, noop: 300 * ms, change: 1 * time.Second, bytes: 80 << 20, catalog: 4950,
			conns: 12, backends: 12, backendKB: 12 * 2048, rssKB: 45 << 10,
			uniform: 2400, zipf: 2450, uniformP50: 2 * ms, uniformP99: 11 * ms, zipfP50: 2 * ms, zipfP99: 10 * ms,
			sessions: 12, hit: 999_000, read: 1000, mostConns: 12,
			coldFirst: 12 * ms, coldSecond: 2 * ms, reportMedian: 120 * ms, reportMax: 200 * ms},
		{setup: 30 * time.Second, seed: 70 * time.Second, noop: 3 * time.Second, change: 12 * time.Second, bytes: 800 << 20, catalog: 46_350,
			conns: 14, backends: 14, backendKB: 14 * 8192, rssKB: 50 << 10,
			uniform: 2200, zipf: 2300, uniformP50: 3 * ms, uniformP99: 14 * ms, zipfP50: 2 * ms, zipfP99: 12 * ms,
			sessions: 14, hit: 9_990_000, read: 10_000, mostConns: 14,
			coldFirst: 30 * ms, coldSecond: 2 * ms, reportMedian: 900 * ms, reportMax: 1200 * ms},
	},
	"singleschema": {
		{setup: 300 * ms, seed: 900 * ms, noop: 20 * ms, change: 90 * ms, bytes: 8 << 20, catalog: 400,
			conns: 8, backends: 8, backendKB: 8 * 1024, rssKB: 38 << 10,
			uniform: 4000, zipf: 4000, uniformP50: 1 * ms, uniformP99: 5 * ms, zipfP50: 1 * ms, zipfP99: 5 * ms,
			sessions: 8, hit: 100_000, read: 10, mostConns: 8,
			coldFirst: 3 * ms, coldSecond: 1 * ms, reportMedian: 5 * ms, reportMax: 8 * ms},
		{setup: 350 * ms, seed: 6 * time.Second, noop: 20 * ms, change: 300 * ms, bytes: 70 << 20, catalog: 400,
			conns: 9, backends: 9, backendKB: 9 * 1024, rssKB: 39 << 10,
			uniform: 4100, zipf: 4050, uniformP50: 1 * ms, uniformP99: 5 * ms, zipfP50: 1 * ms, zipfP99: 5 * ms,
			sessions: 9, hit: 1_000_000, read: 100, mostConns: 9,
			coldFirst: 3 * ms, coldSecond: 1 * ms, reportMedian: 20 * ms, reportMax: 30 * ms},
		{setup: 500 * ms, seed: 60 * time.Second, noop: 20 * ms, change: 3 * time.Second, bytes: 700 << 20, catalog: 400,
			conns: 9, backends: 9, backendKB: 9 * 2048, rssKB: 40 << 10,
			uniform: 4000, zipf: 4100, uniformP50: 1 * ms, uniformP99: 6 * ms, zipfP50: 1 * ms, zipfP99: 5 * ms,
			sessions: 9, hit: 10_000_000, read: 1000, mostConns: 9,
			coldFirst: 4 * ms, coldSecond: 1 * ms, reportMedian: 150 * ms, reportMax: 180 * ms},
	},
}

var sweepOrder = []string{"multidb", "multischema", "singleschema"}

// fixtureLoad is a tenant-page load of the fixture: 10 seconds, long enough
// to conclude from.
func fixtureLoad(kind string, rate float64, p50, p99 time.Duration, f fixtureFigures) Load {
	elapsed := 10 * time.Second
	ok := int(rate * elapsed.Seconds())
	return Load{
		Kind: kind, Requests: ok, OK: ok, Elapsed: elapsed, Throughput: rate,
		Latency: Percentiles{P50: p50, P90: (p50 + p99) / 2, P99: p99, Max: 2 * p99},
		Raw:     Percentiles{P50: p50, P90: (p50 + p99) / 2, P99: p99, Max: 2 * p99},
		Server:  ServerActivity{Sessions: f.sessions, BlocksHit: f.hit, BlocksRead: f.read, MostConns: f.mostConns},
	}
}

func fixtureStrategy(name string, tenants int, f fixtureFigures) StrategyResult {
	s := StrategyResult{
		Name: name, Accounts: tenants, Databases: 1,
		Setup: f.setup, Seed: f.seed, Rows: int64(tenants) * 1000,
		DatabaseBytes: f.bytes, CatalogEntries: f.catalog,
		NoopMigrate: f.noop, SchemaChange: f.change, SchemaChangeName: "00012_subtasks_priority.sql",
		Backends: f.backends, BackendPrivateKB: f.backendKB,
		ColdTenant: "tenant-cold", ColdFirst: f.coldFirst, ColdSecond: f.coldSecond,
		Report:      CrossTenantReport{Runs: 5, Median: f.reportMedian, Max: f.reportMax, Tenants: tenants - f.unreachable, Unreachable: f.unreachable},
		ServerConns: f.conns, ConnBudget: 16,
		RSSBeforeKB: 30 << 10, RSSAfterKB: f.rssKB,
		Probe: Probe{Requests: 500, OK: 500, RowsChecked: 5000},
		Loads: []Load{
			fixtureLoad(LoadAnyPage, f.uniform, f.uniformP50, f.uniformP99, f),
			fixtureLoad(LoadZipf, f.zipf, f.zipfP50, f.zipfP99, f),
		},
	}
	if name == "multidb" {
		s.Databases = tenants + 2
		s.OpenLimit = 250
		s.Skipped = map[string]string{LoadAllTenantsFirst: allTenantsSkipped}
	} else {
		s.Loads = append(s.Loads, fixtureLoad(LoadAllTenantsFirst, f.uniform/2, 2*f.uniformP50, 2*f.uniformP99, f))
	}
	return s
}

// sweepReport is the fixture as compare would report it.
func sweepReport() Report {
	r := Report{
		Started:  time.Date(2026, 3, 1, 14, 5, 0, 0, time.UTC),
		Elapsed:  25 * time.Minute,
		Options:  ReportOptions{Sizes: sweepSizes, Zipf: 1.1, Accounts: 1000, Tenants: 1000, Duration: 10 * time.Second, Connections: 16, PerPage: 10, SeedOptions: "--accounts 1000"},
		Machine:  Machine{Cores: 2, CPU: "Example CPU", MemoryMB: 8000, OS: "linux/amd64", GoVersion: "go1.26", PostgreSQL: "PostgreSQL 17.2", MaxConnections: 300, Generator: "built-in"},
		Checksum: "c1000",
	}
	for i, n := range sweepSizes {
		run := SizeRun{Tenants: n, Checksum: "c" + groupDigits(int64(n))}
		for _, name := range sweepOrder {
			run.Strategies = append(run.Strategies, fixtureStrategy(name, n, sweepFixture[name][i]))
		}
		r.Sweep = append(r.Sweep, run)
	}
	r.Strategies = r.Sweep[len(r.Sweep)-1].Strategies
	return r
}
