package compare

import "time"

// Report is everything one `tenancy compare` run measured; Markdown and
// HTML render it.
type Report struct {
	Started time.Time
	// Elapsed is the whole run, setup to teardown.
	Elapsed time.Duration
	Options ReportOptions
	Machine Machine
	// Checksum of the seeded data; the same for every strategy (the run
	// fails otherwise), so both served identical rows.
	Checksum string
	// Strategies in the order they ran (multidb, multischema, singleschema).
	Strategies []StrategyResult
}

// ReportOptions are the settings the run used.
type ReportOptions struct {
	Accounts    int           // singleschema accounts
	Tenants     int           // multidb tenant databases (one account each)
	Duration    time.Duration // of each load
	Connections int           // HTTP connections (requests in flight) per load
	PerPage     int           // rows per list page
	SeedOptions string        // the seed flags, as a user would type them
}

// Machine is where the run happened.
type Machine struct {
	Cores      int    // runtime.NumCPU
	CPU        string // model name from /proc/cpuinfo, if known
	MemoryMB   int64  // total memory, if known
	OS         string // runtime.GOOS/GOARCH and kernel release
	GoVersion  string
	PostgreSQL string // SELECT version()
	// MaxConnections is the server's max_connections, which bounds what a
	// multidb server may keep open and so its figures.
	MaxConnections int
	// Generator names the load generator and how it measures, e.g.
	// "built-in (Go, keep-alive, 16 workers, closed loop; percentiles
	// corrected for coordinated omission)".
	Generator string
}

// StrategyResult is one strategy's row of figures.
type StrategyResult struct {
	Name     string // "multidb" or "singleschema"
	Accounts int
	// Databases the strategy created (multidb: one per tenant plus the
	// base and template databases).
	Databases int

	Setup time.Duration // create roles and databases, migrate
	Seed  time.Duration
	Rows  int64 // rows seeded

	// DatabaseBytes is the on-disk size of every database the strategy
	// uses (pg_database_size summed).
	DatabaseBytes int64

	// ServerConns is the most PostgreSQL connections the server held open
	// at once under load, idle ones included (pg_stat_activity, sampled).
	ServerConns int
	// ConnBudget is the server's working budget (DB_MAX_CONNS): how many
	// connections work at once, across all tenant databases in multidb,
	// in each of its two pools in singleschema. Not a bound on ServerConns.
	ConnBudget int
	// OpenLimit is how many connections a multidb server may keep open
	// across its tenant databases, idle ones included
	// (MULTIDB_OPEN_CONNS); 0 for singleschema, whose pools hold no more
	// than their budget.
	OpenLimit int

	// Server memory (VmRSS of the server process), KiB, before the first
	// load and after the last.
	RSSBeforeKB, RSSAfterKB int64

	// Loads are the measured pages, in the order they ran; Kind tells them
	// apart (see the Load* constants).
	Loads []Load

	// Probe is the isolation check run under load: every row served to a
	// tenant is checked to be that tenant's own.
	Probe Probe

	// Skipped says why a load did not run (e.g. multidb has no
	// all-tenants view), keyed by Load kind.
	Skipped map[string]string
}

// Kinds of Load.
const (
	LoadAnyPage         = "tenant page, any page"      // random tenants and pages
	LoadFirstPage       = "largest tenant, first page" //
	LoadLastPage        = "largest tenant, last page"  //
	LoadAllTenantsFirst = "all tenants, first page"    // not multidb
	LoadAllTenantsMid   = "all tenants, middle page"   //
	LoadAllTenantsLast  = "all tenants, last page"     //
)

// LoadKinds lists the kinds in report order.
func LoadKinds() []string {
	return []string{LoadAnyPage, LoadFirstPage, LoadLastPage, LoadAllTenantsFirst, LoadAllTenantsMid, LoadAllTenantsLast}
}

// Load is one page hammered for a while at fixed concurrency.
type Load struct {
	Kind string
	// Target describes what was asked for, e.g. "tenant-1932.localhost
	// /subtasks/300/" or "2000 tenants, random pages".
	Target   string
	Requests int // answered (OK or not)
	OK       int
	Failed   int
	Elapsed  time.Duration
	// Throughput is requests answered OK per second.
	Throughput float64
	// Latency percentiles of OK requests, corrected for coordinated
	// omission; Raw are the same without the correction.
	Latency Percentiles
	Raw     Percentiles
	// Histogram of OK request latencies (uncorrected), for charts: bucket
	// i counts latencies in (Bounds[i-1], Bounds[i]].
	Histogram Histogram
	// PerSecond is how many requests completed OK in each second of the
	// load, for a throughput-over-time chart.
	PerSecond []int
}

// Percentiles of request latency.
type Percentiles struct {
	P50, P90, P99, Max time.Duration
}

// Histogram is latency counts in buckets with the given upper bounds
// (ascending; the last bucket is everything above the previous bound).
type Histogram struct {
	Bounds []time.Duration
	Counts []int
}

// Probe is the isolation check's outcome.
type Probe struct {
	Requests    int
	OK          int
	RowsChecked int64
	LeakedRows  int64 // must be 0
	Mismatches  int   // pages that disagreed with the seeded data
	Failed      int
	// Problems are a few examples of what went wrong, if anything.
	Problems []string
}
