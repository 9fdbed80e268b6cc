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
	// Strategies in the order they ran (multidb, multischema, singleschema),
	// at the largest size of the sweep: the detailed tables and charts.
	Strategies []StrategyResult
	// Sweep holds every size's results, smallest first (the largest's are
	// Strategies again): the tables and charts against the number of
	// tenants. One entry when one size was asked for.
	Sweep []SizeRun
}

// SizeRun is every strategy measured at one number of tenants.
type SizeRun struct {
	Tenants    int
	Checksum   string
	Strategies []StrategyResult
}

// ReportOptions are the settings the run used.
type ReportOptions struct {
	// Sizes are the numbers of tenants measured (--tenants), ascending.
	Sizes []int
	// Zipf is the exponent s of the skewed load: the tenant of rank k (in
	// id order) gets a share of requests proportional to 1/k^s.
	Zipf        float64
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
	// Citus, when a column ran on Citus, says which Citus and PostgreSQL
	// and how its nodes ran (see CitusColumn).
	Citus string
	// Generator names the load generator and how it measures, e.g.
	// "built-in (Go, keep-alive, 16 workers, closed loop; percentiles
	// corrected for coordinated omission)".
	Generator string
}

// StrategyResult is one strategy's row of figures.
type StrategyResult struct {
	// Name is the column's: a strategy's name, or CitusColumn.
	Name string
	// Platform says what the column ran on when it was not the
	// PostgreSQL server of the run's options (the Citus column's nodes).
	Platform string
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
	// CatalogEntries counts pg_class rows (tables, indexes, sequences,
	// TOAST tables, views, system catalogs) over the databases that hold
	// tenant data (multidb: each tenant's; not its base and template): what
	// each backend may have to cache, and what pg_dump and autovacuum walk.
	CatalogEntries int64

	// NoopMigrate is `migrate` with nothing pending, over every tenant.
	NoopMigrate time.Duration
	// SchemaChange is `migrate` applying the priority migration (a column
	// with a default and an index on subtasks) to every tenant, after
	// seeding; SchemaChangeName is its file.
	SchemaChange     time.Duration
	SchemaChangeName string
	// SchemaChangeSkipped says why the schema change was not timed.
	SchemaChangeSkipped string

	// Backends is how many PostgreSQL backends served the server's roles
	// at the end of the loads, and BackendPrivateKB their private memory
	// (Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup, so not
	// the shared buffers they touched), summed; 0 when unreadable (a
	// server on another machine).
	Backends         int
	BackendPrivateKB int64

	// ColdFirst is the latency of the first request for a tenant that no
	// load and no warm-up visited (ColdTenant), after the loads; ColdSecond
	// the same request again at once.
	ColdTenant            string
	ColdFirst, ColdSecond time.Duration

	// Report is the cross-tenant report (GET /reports/open-subtasks).
	Report CrossTenantReport

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

// CrossTenantReport is how the open-subtasks report fared.
type CrossTenantReport struct {
	Runs int // requests timed, one after another
	// Median and Max of their latencies.
	Median, Max time.Duration
	Tenants     int // rows in the report
	Unreachable int // tenants it said it could not reach (multidb)
	Error       string
}

// Kinds of Load.
const (
	LoadZipf            = "tenant page, Zipf tenants"  // tenants by Zipf(s), random pages
	LoadAnyPage         = "tenant page, any page"      // uniform random tenants and pages
	LoadFirstPage       = "largest tenant, first page" //
	LoadLastPage        = "largest tenant, last page"  //
	LoadAllTenantsFirst = "all tenants, first page"    // not multidb
	LoadAllTenantsMid   = "all tenants, middle page"   //
	LoadAllTenantsLast  = "all tenants, last page"     //
	// LoadMixed is 90% page reads and 10% writes through the JSON API
	// (toggles with If-Match, creates paired with deletes), uniform
	// tenants: what a working day looks like.
	LoadMixed = "mixed 90% reads / 10% writes"
	// LoadBusyWriters is every connection writing to one tenant, and
	// LoadSpreadWriters the same writes spread over every tenant: the
	// first queue on what the tenant's writes share (its counts row),
	// the second not.
	LoadBusyWriters   = "one tenant's writers"
	LoadSpreadWriters = "writers, uniform tenants"
)

// MixedWrites is the share of LoadMixed's turns that write.
const MixedWrites = 0.1

// LoadKinds lists the kinds in report order.
func LoadKinds() []string {
	return []string{LoadAnyPage, LoadZipf, LoadMixed, LoadBusyWriters, LoadSpreadWriters, LoadFirstPage, LoadLastPage, LoadAllTenantsFirst, LoadAllTenantsMid, LoadAllTenantsLast}
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
	// Server is what PostgreSQL did during the load, over the strategy's
	// databases (pg_stat_database differences): where the time went.
	Server ServerActivity
	// Reads and Writes break a load that writes (LoadMixed,
	// LoadBusyWriters, LoadSpreadWriters) down: reads are page GETs and
	// the GETs a toggle reads its ETag with; writes are PATCH, POST and
	// DELETE. Zero for a load of page reads alone.
	Reads, Writes OpFigures
	// Conflicts are writes answered 412 (the subtask changed since its
	// ETag was read; nothing written): neither OK nor failed.
	Conflicts int
	// CPU is the CPU time each part of the run used during the load;
	// nil when not measured (measured on the Citus column, whose nodes
	// are this run's own processes).
	CPU *CPUUse
}

// OpFigures are one kind of request's share of a load.
type OpFigures struct {
	OK, Failed int
	// PerSecond is OK answers per second.
	PerSecond float64
	// Latency of the OK answers, as measured (not corrected).
	Latency Percentiles
}

// ServerActivity is PostgreSQL's side of a load.
type ServerActivity struct {
	// Sessions is how many connections were opened (backends started).
	Sessions int64
	// BlocksHit and BlocksRead are shared-buffer hits and reads from the
	// operating system (its page cache or disk): cache misses.
	BlocksHit, BlocksRead int64
	// MostConns is the most connections the server's roles held at once.
	MostConns int
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
