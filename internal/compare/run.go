// Package compare measures the strategies side by side on identical data:
// for each, it sets up fresh, uniquely named databases, seeds them with the
// same options (the same checksum), starts a server, loads it with the
// built-in generator (internal/loadcheck), probes isolation under that load,
// and tears everything down; Report holds the figures, and WriteMarkdown and
// WriteHTML render them.
package compare

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"tenancy/internal/loadcheck"
	"tenancy/internal/localcluster"
	"tenancy/internal/password"
	"tenancy/internal/pgsettings"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/multidb"
	multidbmigrations "tenancy/strategy/multidb/migrations"
	multischemamigrations "tenancy/strategy/multischema/migrations"
	singleschemamigrations "tenancy/strategy/singleschema/migrations"
	"tenancy/strategy/strategies"
)

// Options describe a run.
type Options struct {
	// Base gives the PostgreSQL server, the admin role and the database
	// name prefix; the run makes databases and roles of its own from it.
	Base strategy.Options
	// Seed is what every strategy is seeded with; Seed.Accounts is also
	// the number of multidb tenant databases, unless Sizes is set.
	Seed seed.Options
	// Sizes, when set, are the numbers of tenants to measure one after
	// another (a sweep), each with fresh databases and Seed otherwise
	// unchanged; empty: Seed.Accounts alone.
	Sizes []int
	// Zipf is the exponent of the skewed load (1.1 when zero).
	Zipf        float64
	Strategies  []string      // default: all
	Duration    time.Duration // of each load (10s when zero)
	Connections int           // HTTP connections per load (16 when zero)
	// Server starts `tenancy serve` with the environment given and returns
	// once it is listening.
	Server ServerStarter
	// Progress gets a line per step; nil discards them.
	Progress io.Writer
	// Seeding is told how seeding goes (may be nil).
	Seeding seed.Reporter
	// Wrk is the path of wrk, which then runs the loads; empty: the
	// built-in generator does. The isolation probe always runs on the
	// built-in one, which checks every row.
	Wrk string
}

// ServerStarter starts a tenancy server with env (KEY=value) listening on
// a loopback port.
type ServerStarter func(ctx context.Context, env []string) (*Server, error)

// Server is a running tenancy server.
type Server struct {
	URL  string // e.g. http://127.0.0.1:41234
	PID  int    // for its memory use
	Stop func() error
}

// baseDomain is what the servers are started with; requests carry it in
// their Host header and never resolve it.
const baseDomain = "localhost"

// perPage is the handlers' page size.
const perPage = 10

// Run measures every strategy in turn and returns the report. Everything it
// creates is dropped before it returns, on error and Ctrl-C too.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Connections <= 0 {
		o.Connections = 16
	}
	if len(o.Strategies) == 0 {
		o.Strategies = strategy.Names()
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Server == nil {
		return Report{}, errors.New("compare: no way to start a server")
	}
	if o.Zipf <= 0 {
		o.Zipf = DefaultZipf
	}
	if len(o.Sizes) == 0 {
		o.Sizes = []int{o.Seed.Accounts}
	}
	if o.Seed.PasswordIterations == 0 {
		o.Seed.PasswordIterations = SignInIterations
	}
	o.Sizes = slices.Sorted(slices.Values(o.Sizes))
	rep := Report{
		Started: time.Now().UTC(),
		Options: ReportOptions{
			Sizes: o.Sizes, Zipf: o.Zipf,
			Duration: o.Duration, Connections: o.Connections, PerPage: perPage,
		},
	}
	if hasCitus(o.Strategies) {
		if err := CitusAvailable(); err != nil {
			return rep, fmt.Errorf("the %s column: %w", CitusColumn, err)
		}
	}
	var err error
	if rep.Machine, err = machine(ctx, o); err != nil {
		return rep, err
	}
	step, steps := 0, len(o.Sizes)*len(o.Strategies)
	for _, size := range o.Sizes {
		run := SizeRun{Tenants: size}
		sized := o
		sized.Seed.Accounts = size
		rep.Options.Accounts, rep.Options.Tenants, rep.Options.SeedOptions = size, size, seedFlags(sized.Seed)
		for _, name := range o.Strategies {
			step++
			fmt.Fprintf(o.Progress, "[%d/%d] %s, %d tenants\n", step, steps, name, size)
			res, sum, err := runStrategy(ctx, sized, name)
			if err != nil {
				return rep, fmt.Errorf("%s at %d tenants: %w", name, size, err)
			}
			if run.Checksum != "" && sum != run.Checksum {
				return rep, fmt.Errorf("%s was seeded with checksum %s, the others with %s: the strategies did not get identical data", name, sum, run.Checksum)
			}
			run.Checksum = sum
			run.Strategies = append(run.Strategies, res)
			if res.Platform != "" {
				rep.Machine.Citus = res.Platform
			}
		}
		rep.Sweep = append(rep.Sweep, run)
		rep.Checksum, rep.Strategies = run.Checksum, run.Strategies
	}
	rep.Elapsed = time.Since(rep.Started)
	return rep, nil
}

// SignInIterations is the cost of the seeded users' password hash in a
// run: the loads sign in one user per tenant, and at the 600,000
// iterations sign-in is built for, 2,000 sign-ins would hold both cores
// of a small machine for minutes before anything is measured. The pages
// measured check the session cookie, which costs the same whatever the
// hash.
const SignInIterations = 1000

// DefaultZipf is the skew of the Zipf load: the busiest tenant of 1,000
// gets about 13% of the requests, the ten busiest 40%, the last a hundredth
// of a percent. An exponent near 1 is what the popularity of web sites,
// and the activity of a SaaS product's customers, are usually fitted with.
const DefaultZipf = 1.1

func runStrategy(ctx context.Context, o Options, name string) (res StrategyResult, checksum string, err error) {
	res = StrategyResult{Name: name, Accounts: o.Seed.Accounts, Skipped: map[string]string{}}
	say := func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "  "+format+"\n", args...)
	}
	opts := o.Base.Throwaway("cmp")
	opts.Strategy = name
	opts.TenantCount = o.Seed.Accounts
	// Every node's admin options: the one server, or a Citus's nodes.
	nodes := []strategy.Options{opts}
	var cluster *localcluster.Citus
	if name == CitusColumn {
		if cluster, err = startCitus(ctx, &opts, say); err != nil {
			return res, "", err
		}
		defer func() {
			// Stopped whatever happens, Ctrl-C included; the databases
			// go with it.
			say("citus: stopping the nodes and removing their directories")
			if serr := cluster.Stop(); serr != nil {
				err = errors.Join(err, fmt.Errorf("stop the Citus nodes: %w", serr))
			}
		}()
		nodes = citusNodes(opts, cluster)
		if res.Platform, err = citusPlatform(ctx, opts, cluster); err != nil {
			return res, "", err
		}
		// 00009, which distributes the tables, comes after the schema
		// change: held back with it, the tables would stay on the
		// coordinator through the seed and the schema change, and
		// neither would be Citus's figure.
		opts.HoldBackMigrations = 0
		res.SchemaChangeSkipped = "on Citus the tables are distributed by a later migration (00009), so setup applies every migration"
	} else {
		// Set up at the version before the schema change, which is timed
		// apart; the migrations after it are applied after it, untimed.
		opts.HoldBackMigrations = heldBack(name)
		if opts.HoldBackMigrations == 0 {
			return res, "", fmt.Errorf("%s has no migration ending with %s to time as the schema change", name, schemaChange)
		}
	}

	admin, err := strategies.OpenAdmin(opts)
	if err != nil {
		return res, "", err
	}
	if cluster == nil {
		defer func() {
			// Dropped whatever happens, Ctrl-C included.
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
			defer cancel()
			say("dropping %s*", opts.Database)
			if derr := admin.Destroy(cleanup); derr != nil {
				err = errors.Join(err, fmt.Errorf("dropping the databases failed (drop %s* by hand): %w", opts.Database, derr))
			}
		}()
	} else {
		defer admin.Close()
	}

	say("setup: creating %s", opts.Database)
	setup, err := admin.Setup(ctx, nil)
	if err != nil {
		return res, "", fmt.Errorf("setup: %w", err)
	}
	res.Setup = setup.Elapsed
	res.Databases = len(setup.Databases)
	say("setup: %s", setup.Summary())

	seeder, err := seed.NewSeeder(admin, opts.TenantCount, nil, o.Seeding)
	if err != nil {
		return res, "", err
	}
	seeded, err := seeder.Run(ctx, o.Seed)
	if err != nil {
		return res, "", fmt.Errorf("seed: %w", err)
	}
	res.Seed, res.Rows = seeded.Elapsed, int64(seeded.Counts.Rows())
	say("seed: %d rows in %s, checksum %s", res.Rows, seeded.Elapsed.Round(time.Millisecond), seeded.Checksum)

	if err := migrations(ctx, opts, &res, say); err != nil {
		return res, "", err
	}

	facts, err := prepare(ctx, opts, nodes, say)
	if err != nil {
		return res, "", err
	}
	// The base domain's pages (the all-tenants view, the cross-tenant
	// report) need an operator: one for this run, with a password no one
	// else knows.
	facts.operatorEmail, facts.operatorPassword = "compare@tenancy.invalid", rand.Text()
	hash, err := password.Hash(facts.operatorPassword)
	if err != nil {
		return res, "", err
	}
	if _, err := admin.CreateOperator(ctx, facts.operatorEmail, hash); err != nil {
		return res, "", fmt.Errorf("create the run's operator: %w", err)
	}
	res.DatabaseBytes, res.CatalogEntries = facts.bytes, facts.catalog

	opts.HoldBackMigrations = 0
	if name == strategy.MultiDB {
		if opts.TenantConns, err = tenantConns(ctx, opts); err != nil {
			return res, "", err
		}
		say("server: keeps up to %d connections open across %d tenant databases", opts.TenantConns, opts.TenantCount)
	}
	srv, err := o.Server(ctx, serverEnv(opts, o.Base))
	if err != nil {
		return res, "", fmt.Errorf("start the server: %w", err)
	}
	defer func() {
		if serr := srv.Stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop the server: %w", serr))
		}
	}()
	say("server: %s (pid %d)", srv.URL, srv.PID)
	res.ConnBudget, res.OpenLimit = opts.MaxConns, opts.TenantConns

	var meter *cpuMeter
	if cluster != nil {
		meter = &cpuMeter{coordinator: cluster.Coordinator.PID(), server: srv.PID}
		for _, w := range cluster.Workers {
			meter.workers = append(meter.workers, w.PID())
		}
	}
	if err := measure(ctx, o, opts, nodes, meter, srv, facts, &res, o.Seed.Accounts == slices.Max(o.Sizes), say); err != nil {
		return res, "", err
	}
	return res, seeded.Checksum, nil
}

// migrations applies the first migration setup held back, a real schema
// change, to every tenant and times it, applies the rest untimed, then
// times a migrate with nothing pending.
// With nothing held back (the Citus column) it times the migrate with
// nothing pending alone.
func migrations(ctx context.Context, opts strategy.Options, res *StrategyResult, say func(string, ...any)) error {
	if opts.HoldBackMigrations == 0 {
		return noopMigrate(ctx, opts, res, say)
	}
	later := opts.HoldBackMigrations - 1
	opts.HoldBackMigrations = later
	admin, err := strategies.OpenAdmin(opts)
	if err != nil {
		return err
	}
	defer admin.Close()
	change, err := admin.Migrate(ctx, nil, strategy.MigrateOptions{})
	if err != nil {
		return fmt.Errorf("migrate (the schema change): %w", err)
	}
	res.SchemaChange = change.Elapsed
	for _, d := range change.Databases {
		if len(d.Applied) > 0 {
			res.SchemaChangeName = d.Applied[len(d.Applied)-1]
		}
	}
	if res.SchemaChangeName == "" {
		return errors.New("migrate applied no schema change: setup held back none")
	}
	if later > 0 {
		opts.HoldBackMigrations = 0
		rest, err := strategies.OpenAdmin(opts)
		if err != nil {
			return err
		}
		defer rest.Close()
		admin = rest
		if _, err := admin.Migrate(ctx, nil, strategy.MigrateOptions{}); err != nil {
			return fmt.Errorf("migrate (the %d migration(s) after the schema change): %w", later, err)
		}
	}
	if err := timeNoop(ctx, admin, res); err != nil {
		return err
	}
	say("migrate: %s to every tenant in %s; with nothing pending, %s", res.SchemaChangeName,
		res.SchemaChange.Round(time.Millisecond), res.NoopMigrate.Round(time.Millisecond))
	return nil
}

// noopMigrate times a migrate with nothing pending, on a deployment that
// setup brought up to date.
func noopMigrate(ctx context.Context, opts strategy.Options, res *StrategyResult, say func(string, ...any)) error {
	admin, err := strategies.OpenAdmin(opts)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := timeNoop(ctx, admin, res); err != nil {
		return err
	}
	say("migrate: with nothing pending, %s (no schema change timed: %s)", res.NoopMigrate.Round(time.Millisecond), res.SchemaChangeSkipped)
	return nil
}

func timeNoop(ctx context.Context, admin strategy.Admin, res *StrategyResult) error {
	noop, err := admin.Migrate(ctx, nil, strategy.MigrateOptions{})
	if err != nil {
		return fmt.Errorf("migrate (nothing pending): %w", err)
	}
	for _, d := range noop.Databases {
		if len(d.Applied) > 0 {
			return fmt.Errorf("a second migrate applied %v to %s: want nothing pending", d.Applied, d.Database)
		}
	}
	res.NoopMigrate = noop.Elapsed
	return nil
}

// facts are what the loads need to know about the seeded data.
type facts struct {
	slugs    []string
	pagesOf  []int   // of each slug
	countOf  []int64 // subtasks of each slug
	largest  string  // slug of the tenant with the most subtasks
	pages    int     // of the largest tenant
	allPages int     // of the all-tenants view (not multidb's)
	bytes    int64
	catalog  int64 // pg_class entries over every database
	// operatorEmail and operatorPassword sign the base domain's loads in.
	operatorEmail, operatorPassword string
}

// prepare vacuums and analyzes every database, as a deployment's
// autovacuum would have by the time it served traffic (a freshly bulk-loaded
// table has no statistics and no visibility map, so its first plans and
// index-only scans are not what a user would see), and learns what the
// loads need.
//
// On Citus (nodes beyond the first), VACUUM on the coordinator reaches the
// shards, and the catalog and the size are summed over every node: the
// data is on the workers.
func prepare(ctx context.Context, opts strategy.Options, nodes []strategy.Options, say func(string, ...any)) (facts, error) {
	var f facts
	databases := []string{opts.Database}
	if opts.Strategy == strategy.MultiDB {
		databases = databases[:0]
		for i := range opts.TenantCount {
			databases = append(databases, opts.TenantDatabase(i))
		}
	}
	start := time.Now()
	most := int64(-1)
	var all int64
	for _, db := range databases {
		err := withAdmin(ctx, opts, db, func(c *pgx.Conn) error {
			if _, err := c.Exec(ctx, "VACUUM (ANALYZE)"); err != nil {
				return fmt.Errorf("vacuum: %w", err)
			}
			var entries int64
			if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_class").Scan(&entries); err != nil {
				return fmt.Errorf("count pg_class: %w", err)
			}
			f.catalog += entries
			rows, err := c.Query(ctx, countsQuery(opts.Strategy))
			if err != nil {
				return err
			}
			var slug string
			var n int64
			_, err = pgx.ForEachRow(rows, []any{&slug, &n}, func() error {
				f.slugs = append(f.slugs, slug)
				f.pagesOf = append(f.pagesOf, max(1, int((n+perPage-1)/perPage)))
				f.countOf = append(f.countOf, n)
				all += n
				if n > most {
					most, f.largest = n, slug
				}
				return nil
			})
			return err
		})
		if err != nil {
			return f, fmt.Errorf("prepare %s: %w", db, err)
		}
	}
	if len(f.slugs) == 0 {
		return f, errors.New("no accounts were seeded")
	}
	f.pages = max(1, int((most+perPage-1)/perPage))
	f.allPages = max(1, int((all+perPage-1)/perPage))
	for _, node := range nodes[1:] {
		err := withAdmin(ctx, node, opts.Database, func(c *pgx.Conn) error {
			var entries int64
			err := c.QueryRow(ctx, "SELECT count(*) FROM pg_class").Scan(&entries)
			f.catalog += entries
			return err
		})
		if err != nil {
			return f, fmt.Errorf("count pg_class on port %d: %w", node.Port, err)
		}
	}
	for _, node := range nodes {
		err := withAdmin(ctx, node, "postgres", func(c *pgx.Conn) error {
			var bytes int64
			err := c.QueryRow(ctx, `SELECT coalesce(sum(pg_database_size(datname)), 0)::bigint FROM pg_database
				WHERE datname = $1 OR starts_with(datname, $1 || '_')`, opts.Database).Scan(&bytes)
			f.bytes += bytes
			return err
		})
		if err != nil {
			return f, fmt.Errorf("database size on port %d: %w", node.Port, err)
		}
	}
	say("vacuum analyze: %d database(s) in %s; largest tenant %s (%d subtasks, %d pages)",
		len(databases), time.Since(start).Round(time.Millisecond), f.largest, most, f.pages)
	return f, nil
}

// signable keeps the tenants users has a user of: the loads sign in to
// each tenant they ask for, and a tenant whose seeded users are all
// inactive has no one to sign in as. The largest tenant is the largest
// of those kept.
func (f facts) signable(users map[string]string) facts {
	out := f
	out.slugs, out.pagesOf, out.countOf, out.largest, out.pages = nil, nil, nil, "", 0
	most := int64(-1)
	for i, slug := range f.slugs {
		if _, ok := users[slug]; !ok {
			continue
		}
		out.slugs = append(out.slugs, slug)
		out.pagesOf = append(out.pagesOf, f.pagesOf[i])
		out.countOf = append(out.countOf, f.countOf[i])
		if f.countOf[i] > most {
			most, out.largest, out.pages = f.countOf[i], slug, f.pagesOf[i]
		}
	}
	return out
}

// coldIndex is the cold tenant's index in f.slugs: the last by id, unless
// that is the largest, whose pages the loads sign in to and ask for (the
// one before it then); -1 when there is only one tenant.
func coldIndex(f facts) int {
	if len(f.slugs) < 2 {
		return -1
	}
	if last := len(f.slugs) - 1; f.slugs[last] != f.largest {
		return last
	}
	return len(f.slugs) - 2
}

// signInUsers gives each seeded tenant's first active user (see
// seed.SignInEmail).
func signInUsers(o seed.Options, slugs []string) map[string]string {
	users := make(map[string]string, len(slugs))
	for _, slug := range slugs {
		i, ok := strategy.ParseSlug(slug)
		if !ok {
			continue
		}
		if email, ok := seed.SignInEmail(o, i); ok {
			users[slug] = email
		}
	}
	return users
}

// countsQuery lists each account's slug and number of subtasks, in id
// order: multischema keeps the totals in public, beside the accounts.
func countsQuery(strategyName string) string {
	counts := "subtask_counts"
	if strategyName == strategy.MultiSchema {
		counts = "tenant_totals"
	}
	return `SELECT a.slug, coalesce(c.subtasks, 0) FROM accounts a
		LEFT JOIN ` + counts + ` c ON c.account_id = a.id ORDER BY a.id`
}

// tenantConns is how many connections the multidb server may keep open:
// what its pool policy keeps by default on this cluster
// (multidb.TenantConnsFor: a working budget per tenant, within three
// quarters of max_connections) or MULTIDB_OPEN_CONNS, as far as the
// server's max_connections leaves room for them beside what is connected
// already. The report's connection figure shows what was held.
//
// A server with no room left for even two fails the run: its pools could
// open no tenant connection, and every request would fail.
func tenantConns(ctx context.Context, opts strategy.Options) (int, error) {
	s, err := pgsettings.Read(ctx, opts.AdminDSN("postgres"))
	if err != nil {
		return 0, err
	}
	// Headroom: the run's own admin connections and connection watcher,
	// the server's base pool, and the connections pools may open while
	// others are closing (up to the working budget).
	headroom := 8 + opts.MaxConns
	room := s.Free() - headroom
	if room < 2 {
		return 0, fmt.Errorf("PostgreSQL has %d connections free (max_connections %d, %d reserved for superusers, %d in use) "+
			"and the run and the server's working budget take %d of them, which leaves no room for multidb's tenant "+
			"connections: close other clients, or %s", s.Free(), s.MaxConnections, s.Reserved, s.InUse, headroom,
			s.RaiseConnections(pgsettings.MultiDBConnections(opts.TenantCount, s.Reserved)))
	}
	// What a server on this cluster keeps open by default (its pool
	// policy), or what MULTIDB_OPEN_CONNS says.
	want := multidb.TenantConnsFor(opts, s.MaxConnections-s.Reserved)
	if opts.TenantConns > 0 {
		want = opts.TenantConns
	}
	return max(2, min(want, room)), nil
}

func withAdmin(ctx context.Context, opts strategy.Options, database string, fn func(*pgx.Conn) error) error {
	c, err := pgx.Connect(ctx, opts.AdminDSN(database))
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	return fn(c)
}

// serverEnv is the environment of the server under test: the run's
// databases and roles, the caller's server settings.
func serverEnv(opts, base strategy.Options) []string {
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	env := []string{
		"STRATEGY=" + opts.Strategy,
		"PGHOST=" + opts.Host,
		"PGPORT=" + strconv.Itoa(opts.Port),
		"PGUSER=" + opts.AdminUser,
		"PGPASSWORD=" + opts.AdminPassword,
		"PGDATABASE=" + opts.Database,
		"PGSSLMODE=" + opts.SSLMode,
		"APP_DB_USER=" + opts.AppUser,
		"READER_DB_USER=" + opts.ReaderUser,
		"MULTIDB_COUNT=" + strconv.Itoa(opts.TenantCount),
		"BASE_DOMAIN=" + baseDomain,
		"ALL_TENANTS_VIEW=on",
		"SECRET_KEY=" + hex.EncodeToString(secret),
	}
	if opts.TenantConns > 0 {
		env = append(env, "MULTIDB_OPEN_CONNS="+strconv.Itoa(opts.TenantConns))
	}
	if base.MaxConns > 0 {
		env = append(env, "DB_MAX_CONNS="+strconv.Itoa(base.MaxConns))
	}
	if base.QueryExecMode != "" {
		env = append(env, "DB_QUERY_EXEC_MODE="+base.QueryExecMode)
	}
	if base.TimeZone != "" {
		env = append(env, "TZ="+base.TimeZone)
	}
	if base.CoordinatorReads {
		env = append(env, "CITUS_WORKER_READS=off")
	}
	return env
}

// measure runs the loads against the server, one after another.
//
// nodes are every PostgreSQL node's admin options (more than one on
// Citus), whose counters are summed; meter, when not nil, reads the CPU
// time each part of the run uses during each load.
func measure(ctx context.Context, o Options, opts strategy.Options, nodes []strategy.Options, meter *cpuMeter, srv *Server, f facts, res *StrategyResult, detail bool, say func(string, ...any)) error {
	client := loadcheck.NewClient(o.Connections)
	defer client.CloseIdleConnections()

	// Pages want a signed-in user of their tenant: one per tenant, signed
	// in before anything is measured (the cold tenant's just before its
	// requests, so that nothing touches it earlier).
	users := signInUsers(o.Seed, f.slugs)
	if n := len(f.slugs) - len(users); n > 0 {
		say("sign-in: %d of %d tenants have no active user to sign in as, and are left out of the loads", n, len(f.slugs))
	}
	f = f.signable(users)
	if len(f.slugs) == 0 {
		return errors.New("no seeded tenant has an active user to sign in as: seed more users per account (--min-users)")
	}

	// The cold tenant is the last by id, the least busy under the Zipf
	// load: no load and no warm-up visits it, so its first request after
	// the loads is what an idle tenant's customer meets. With one tenant
	// there is none to spare.
	slugs, pagesOf := f.slugs, f.pagesOf
	if i := coldIndex(f); i >= 0 {
		res.ColdTenant = slugs[i]
		slugs = slices.Delete(slices.Clone(slugs), i, i+1)
		pagesOf = slices.Delete(slices.Clone(pagesOf), i, i+1)
	}
	warmUsers := make(map[string]string, len(slugs))
	for _, slug := range slugs {
		warmUsers[slug] = users[slug]
	}
	signInStart := time.Now()
	sessions, err := loadcheck.SignIn(ctx, loadcheck.SignInOptions{
		URL: srv.URL, BaseDomain: baseDomain, Users: warmUsers, Password: seed.SamplePassword,
		Client: client, Concurrency: o.Connections,
	})
	if err != nil {
		return fmt.Errorf("sign in one user per tenant: %w", err)
	}
	operator, err := loadcheck.SignIn(ctx, loadcheck.SignInOptions{
		URL: srv.URL, BaseDomain: baseDomain, Users: map[string]string{"": f.operatorEmail}, Password: f.operatorPassword, Client: client,
	})
	if err != nil {
		return fmt.Errorf("sign the run's operator in: %w", err)
	}
	sessions[""] = operator[""]
	say("sign-in: one user on each of %d tenants, and an operator, in %s", len(sessions)-1, time.Since(signInStart).Round(time.Millisecond))
	base := loadcheck.Options{URL: srv.URL, BaseDomain: baseDomain, Concurrency: o.Connections, Client: client, Sessions: sessions}

	// Warm up: connections opened, plans cached, pages in memory. As long
	// as a load: multidb opens its tenants' connections in the first
	// seconds (about 200 for 100 tenants, each some 0.45 MB of the
	// server's memory), and the memory figure taken next should be the
	// server at work, so that before -> after shows what load adds.
	//
	// First every tenant once (but the cold one): a server that has been
	// up a while has met each of its tenants, and a tenant's first
	// request costs what no later one does (its database or schema
	// audited, its pool opened). At 1,000 tenant databases a timed warm-up
	// alone met half of them, and the first measured load paid for the
	// rest: 52 req/s.
	say("warm-up: every tenant once, then %s of load", max(time.Second, o.Duration))
	if err := visitEach(ctx, client, srv.URL, slugs, sessions, o.Connections); err != nil {
		return err
	}
	warm := base
	warm.Tenants = slugs
	if _, err := timed(ctx, max(time.Second, o.Duration), warm); err != nil {
		return err
	}
	res.RSSBeforeKB = rssKB(srv.PID)

	conns := watchConnections(ctx, opts)
	defer func() { res.ServerConns = conns() }()

	type plan struct {
		kind, target string
		o            loadcheck.Options
		wrk          target
		// builtIn: the load needs the built-in generator whatever the
		// run's (wrk cannot carry an ETag from an answer to a request).
		builtIn bool
	}
	anyPage := base
	anyPage.Tenants = slugs
	zipf := anyPage
	zipf.Zipf = o.Zipf
	first, last := base, base
	first.Tenants, first.Page = []string{f.largest}, 1
	last.Tenants, last.Page = []string{f.largest}, f.pages
	hosts := make([]string, len(slugs))
	cookies := make([]string, len(slugs))
	for i, slug := range slugs {
		hosts[i] = slug + "." + baseDomain
		cookies[i] = sessions[slug]
	}
	largest := []string{f.largest + "." + baseDomain}
	largestCookie := []string{sessions[f.largest]}
	plans := []plan{
		{LoadAnyPage, fmt.Sprintf("%d tenants, uniform, random pages", len(slugs)), anyPage, target{hosts: hosts, cookies: cookies, pages: pagesOf}, false},
		{LoadZipf, fmt.Sprintf("%d tenants, Zipf s=%g, random pages", len(slugs), o.Zipf), zipf,
			target{hosts: hosts, cookies: cookies, pages: pagesOf, cdf: loadcheck.ZipfCDF(len(hosts), o.Zipf)}, false},
	}
	writeKinds := []string{LoadMixed, LoadBusyWriters, LoadSpreadWriters}
	if why := writeAPI(ctx, client, srv.URL, slugs[0], sessions[slugs[0]]); why != "" {
		say("writes: %s; the loads that write are skipped", why)
		for _, k := range writeKinds {
			res.Skipped[k] = why
		}
	} else {
		mixed := anyPage
		mixed.Writes = MixedWrites
		plans = append(plans, plan{LoadMixed, fmt.Sprintf("%d tenants, uniform, %.0f%% of turns write", len(slugs), 100*MixedWrites), mixed, target{}, true})
		if detail {
			busy := base
			busy.Tenants, busy.Writes = slugs[:1], 1
			spread := anyPage
			spread.Writes = 1
			plans = append(plans,
				plan{LoadBusyWriters, fmt.Sprintf("every connection writing to %s", slugs[0]), busy, target{}, true},
				plan{LoadSpreadWriters, fmt.Sprintf("%d tenants, uniform, writes only", len(slugs)), spread, target{}, true})
		} else {
			for _, k := range writeKinds[1:] {
				res.Skipped[k] = "measured at the sweep's largest size only"
			}
		}
	}
	allKinds := []struct {
		kind string
		page int
	}{{LoadAllTenantsFirst, 1}, {LoadAllTenantsMid, (f.allPages + 1) / 2}, {LoadAllTenantsLast, f.allPages}}
	if !detail {
		// Below a sweep's largest size only the tenant loads run: the
		// detail is read at the largest, and the sweep stays well inside
		// half an hour.
		for _, k := range []string{LoadFirstPage, LoadLastPage, LoadAllTenantsFirst, LoadAllTenantsMid, LoadAllTenantsLast} {
			res.Skipped[k] = "measured at the sweep's largest size only"
		}
		allKinds = nil
	} else {
		plans = append(plans,
			plan{LoadFirstPage, fmt.Sprintf("%s.%s /subtasks/1/", f.largest, baseDomain), first, target{hosts: largest, cookies: largestCookie, page: 1}, false},
			plan{LoadLastPage, fmt.Sprintf("%s.%s /subtasks/%d/", f.largest, baseDomain, f.pages), last, target{hosts: largest, cookies: largestCookie, page: f.pages}, false})
	}
	for _, k := range allKinds {
		if opts.Strategy == strategy.MultiDB {
			res.Skipped[k.kind] = "multidb has no all-tenants view: each tenant has its own database"
			continue
		}
		all := base
		all.AllTenants, all.Page = true, k.page
		plans = append(plans, plan{k.kind, fmt.Sprintf("%s /subtasks/%d/ (of %d)", baseDomain, k.page, f.allPages), all,
			target{hosts: []string{baseDomain}, cookies: []string{sessions[""]}, page: k.page}, false})
	}

	gen := (*wrk)(nil)
	if o.Wrk != "" {
		dir, err := os.MkdirTemp("", "tenancy-wrk-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		gen = &wrk{path: o.Wrk, dir: dir}
		say("probe: isolation under load for %s at %d connections", o.Duration, o.Connections)
		r, err := timed(ctx, o.Duration, anyPage)
		if err != nil {
			return err
		}
		res.Probe = probeOf(r)
	}
	for _, p := range plans {
		say("load: %s for %s at %d connections", p.kind, o.Duration, o.Connections)
		before, err := activity(ctx, opts, nodes)
		if err != nil {
			return err
		}
		most := watchConnections(ctx, opts)
		var cpuBefore CPUUse
		if meter != nil {
			if cpuBefore, err = meter.sample(); err != nil {
				return err
			}
		}
		var l Load
		if gen != nil && !p.builtIn {
			l, err = gen.run(ctx, p.kind, p.target, srv.URL, p.wrk, o.Duration, o.Connections)
		} else {
			var r loadcheck.Result
			if r, err = timed(ctx, o.Duration, p.o); err == nil {
				l = loadOf(p.kind, p.target, r)
				for _, pr := range r.Problems {
					say("load: %s", pr)
				}
				if p.kind == LoadAnyPage {
					res.Probe = probeOf(r)
				}
			}
		}
		var cpuAfter CPUUse
		if meter != nil && err == nil {
			cpuAfter, err = meter.sample()
		}
		mostConns := most()
		if err != nil {
			return err
		}
		if meter != nil {
			used := cpuAfter.since(cpuBefore)
			l.CPU = &used
		}
		after, err := activity(ctx, opts, nodes)
		if err != nil {
			return err
		}
		l.Server = after.since(before)
		l.Server.MostConns = mostConns
		res.Loads = append(res.Loads, l)
		say("load: %.0f req/s, p50 %s p90 %s p99 %s (%d failed); PostgreSQL: %d connections opened, %d held at most, %.1f%% cache hits",
			l.Throughput, l.Latency.P50, l.Latency.P90, l.Latency.P99, l.Failed, l.Server.Sessions, l.Server.MostConns, 100*l.Server.hitRatio())
		if c := l.CPU; c != nil {
			say("load: CPU per request: coordinator %s, workers %s, server %s, load generator %s; cores busy: these four / the machine %s",
				cpuCell(c.Coordinator, l.Requests), cpuCell(c.Workers, l.Requests), cpuCell(c.Server, l.Requests),
				cpuCell(c.Generator, l.Requests), coresCell(coresBusy(*c, l.Elapsed), machineBusy(*c, l.Elapsed), runtime.NumCPU()))
		}
		if l.Writes.OK+l.Writes.Failed > 0 {
			say("load: reads %.0f/s, writes %.0f/s (p99 %s, %d failed, %d conflicts)",
				l.Reads.PerSecond, l.Writes.PerSecond, l.Writes.Latency.P99, l.Writes.Failed, l.Conflicts)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	res.RSSAfterKB = rssKB(srv.PID)
	if res.Backends, res.BackendPrivateKB, err = backendMemory(ctx, opts, nodes); err != nil {
		return err
	}
	if res.Backends > 0 {
		say("memory: %d backends of the server's roles, %d KiB private in all; the server %d KiB", res.Backends, res.BackendPrivateKB, res.RSSAfterKB)
	}
	if res.ColdTenant != "" {
		cold, err := loadcheck.SignIn(ctx, loadcheck.SignInOptions{
			URL: srv.URL, BaseDomain: baseDomain, Users: map[string]string{res.ColdTenant: users[res.ColdTenant]},
			Password: seed.SamplePassword, Client: client,
		})
		if err != nil {
			return fmt.Errorf("cold tenant: %w", err)
		}
		if res.ColdFirst, res.ColdSecond, err = coldRequests(ctx, client, srv.URL, res.ColdTenant, cold[res.ColdTenant]); err != nil {
			return err
		}
		say("cold tenant %s: first request %s, the next %s", res.ColdTenant, res.ColdFirst.Round(time.Microsecond), res.ColdSecond.Round(time.Microsecond))
	}
	res.Report = crossTenantReport(ctx, client, srv.URL, sessions[""])
	if res.Report.Error != "" {
		say("cross-tenant report: %s", res.Report.Error)
	} else {
		say("cross-tenant report: %d tenants (%d unreachable), median %s, max %s over %d runs", res.Report.Tenants, res.Report.Unreachable,
			res.Report.Median.Round(time.Microsecond), res.Report.Max.Round(time.Microsecond), res.Report.Runs)
	}
	return nil
}

// activity reads PostgreSQL's counters for the strategy's databases,
// summed over nodes.
func activity(ctx context.Context, opts strategy.Options, nodes []strategy.Options) (ServerActivity, error) {
	var a ServerActivity
	for _, node := range nodes {
		var n ServerActivity
		err := withAdmin(ctx, node, "postgres", func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT coalesce(sum(sessions), 0)::bigint, coalesce(sum(blks_hit), 0)::bigint, coalesce(sum(blks_read), 0)::bigint
				FROM pg_stat_database WHERE datname = $1 OR starts_with(datname, $1 || '_')`, opts.Database).Scan(&n.Sessions, &n.BlocksHit, &n.BlocksRead)
		})
		if err != nil {
			return a, fmt.Errorf("read pg_stat_database on port %d: %w", node.Port, err)
		}
		a.Sessions, a.BlocksHit, a.BlocksRead = a.Sessions+n.Sessions, a.BlocksHit+n.BlocksHit, a.BlocksRead+n.BlocksRead
	}
	return a, nil
}

// since is what happened between before and a.
func (a ServerActivity) since(before ServerActivity) ServerActivity {
	return ServerActivity{Sessions: a.Sessions - before.Sessions, BlocksHit: a.BlocksHit - before.BlocksHit, BlocksRead: a.BlocksRead - before.BlocksRead}
}

func (a ServerActivity) hitRatio() float64 {
	if a.BlocksHit+a.BlocksRead == 0 {
		return 0
	}
	return float64(a.BlocksHit) / float64(a.BlocksHit+a.BlocksRead)
}

// backendMemory is how many backends the server's roles hold and their
// private memory in KiB, over nodes (on Citus the coordinator's backends
// reach the workers as the same roles), from /proc, so only for servers
// on this machine whose processes this one may read; 0, 0 otherwise.
func backendMemory(ctx context.Context, opts strategy.Options, nodes []strategy.Options) (backends int, totalKB int64, err error) {
	var pids []int
	for _, node := range nodes {
		err = withAdmin(ctx, node, "postgres", func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE usename = $1 OR usename = $2`, opts.AppUser, opts.ReaderUser)
			if err != nil {
				return err
			}
			more, err := pgx.CollectRows(rows, pgx.RowTo[int])
			pids = append(pids, more...)
			return err
		})
		if err != nil {
			return 0, 0, fmt.Errorf("list the server's backends on port %d: %w", node.Port, err)
		}
	}
	for _, pid := range pids {
		kb, err := privateKB(pid)
		switch {
		case gone(err):
			continue // the backend ended after it was listed
		case err != nil:
			return 0, 0, nil // not this machine's, or not ours to read
		}
		backends++
		totalKB += kb
	}
	return backends, totalKB, nil
}

// privateKB is a process's private memory (Private_Clean + Private_Dirty
// of smaps_rollup), which leaves out the shared buffers it mapped.
func privateKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "Private_Clean" || k == "Private_Dirty") {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			kb += n
		}
	}
	return kb, nil
}

// visitEach asks for every tenant's first page once, conns at a time.
func visitEach(ctx context.Context, client *http.Client, base string, slugs []string, sessions map[string]string, conns int) error {
	errs := make([]error, len(slugs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, conns) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, errs[i] = get(ctx, client, base, slugs[i]+"."+baseDomain, "/subtasks/", sessions[slugs[i]], nil)
			}
		}()
	}
	for i := range slugs {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// get asks for path with the Host header host and the Cookie header
// cookie (if any), as JSON, and returns how long the answer took, its body
// read (into into, when not nil); anything but 200 is an error.
func get(ctx context.Context, client *http.Client, base, host, path, cookie string, into any) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	req.Header.Set("Accept", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s%s: %w", host, path, err)
	}
	if into != nil && resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(into)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	switch {
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("GET %s%s: %s", host, path, resp.Status)
	case err != nil:
		return 0, fmt.Errorf("GET %s%s: %w", host, path, err)
	}
	return d, nil
}

// coldRequests times the first request for a tenant nothing has asked for,
// then the same again.
func coldRequests(ctx context.Context, client *http.Client, base, slug, cookie string) (first, second time.Duration, err error) {
	host := slug + "." + baseDomain
	if first, err = get(ctx, client, base, host, "/subtasks/", cookie, nil); err != nil {
		return 0, 0, fmt.Errorf("cold tenant: %w", err)
	}
	if second, err = get(ctx, client, base, host, "/subtasks/", cookie, nil); err != nil {
		return 0, 0, fmt.Errorf("cold tenant: %w", err)
	}
	return first, second, nil
}

// writeAPI says why the server cannot take the loads that write, or ""
// when it can: it asks for a subtask listed on the tenant's own first
// page through the JSON API, which a server without the write API
// answers 404.
func writeAPI(ctx context.Context, client *http.Client, base, slug, cookie string) string {
	host := slug + "." + baseDomain
	var p struct {
		Rows []struct {
			ID int64 `json:"id"`
		} `json:"rows"`
	}
	if _, err := get(ctx, client, base, host, "/subtasks/", cookie, &p); err != nil {
		return "reading a page to write to: " + err.Error()
	}
	if len(p.Rows) == 0 {
		return host + " has no subtask to write to"
	}
	path := "/api/subtasks/" + strconv.FormatInt(p.Rows[0].ID, 10)
	if _, err := get(ctx, client, base, host, path, cookie, nil); err != nil {
		return "the server has no JSON write API (" + err.Error() + ")"
	}
	return ""
}

// reportRuns is how many times the cross-tenant report is timed.
const reportRuns = 5

// crossTenantReport times GET /reports/open-subtasks on the base domain,
// one request after another; a failure is reported, not fatal, as the
// report is one figure among many.
func crossTenantReport(ctx context.Context, client *http.Client, base, cookie string) CrossTenantReport {
	var r CrossTenantReport
	var took []time.Duration
	for range reportRuns {
		var body reportBody
		d, err := get(ctx, client, base, baseDomain, "/reports/open-subtasks", cookie, &body)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		took = append(took, d)
		r.Tenants, r.Unreachable = len(body.Tenants), len(body.Unreachable)
	}
	slices.Sort(took)
	r.Runs, r.Median, r.Max = len(took), took[len(took)/2], took[len(took)-1]
	return r
}

// reportBody is the part of the report's JSON the figures need.
type reportBody struct {
	Tenants     []json.RawMessage `json:"tenants"`
	Unreachable []json.RawMessage `json:"unreachable"`
}

// timed runs one load for d.
func timed(ctx context.Context, d time.Duration, o loadcheck.Options) (loadcheck.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return loadcheck.Run(ctx, o)
}

func loadOf(kind, target string, r loadcheck.Result) Load {
	l := Load{
		Kind: kind, Target: target, Requests: r.Requests, OK: r.OK, Failed: r.Failed, Elapsed: r.Elapsed,
		Latency: Percentiles(r.Corrected), Raw: Percentiles(r.Latency), PerSecond: r.PerSecond,
		Histogram: histogram(r.Latencies), Conflicts: r.Conflicts,
	}
	if r.Writes.Requests > 0 {
		l.Reads, l.Writes = opFigures(r.Reads, r.Elapsed), opFigures(r.Writes, r.Elapsed)
	}
	if r.Elapsed > 0 {
		l.Throughput = float64(r.OK) / r.Elapsed.Seconds()
	}
	return l
}

func opFigures(s loadcheck.OpStats, elapsed time.Duration) OpFigures {
	f := OpFigures{OK: s.OK, Failed: s.Failed, Latency: Percentiles(s.Latency)}
	if elapsed > 0 {
		f.PerSecond = float64(s.OK) / elapsed.Seconds()
	}
	return f
}

func probeOf(r loadcheck.Result) Probe {
	p := Probe{Requests: r.Requests, OK: r.OK, RowsChecked: r.RowsChecked, LeakedRows: r.LeakedRows, Mismatches: r.Mismatches, Failed: r.Failed}
	for _, pr := range r.Problems {
		p.Problems = append(p.Problems, pr.String())
	}
	return p
}

// histogram buckets latencies (sorted) on a log scale from 100 µs, 25%
// wider each, up to the slowest.
func histogram(sorted []time.Duration) Histogram {
	var h Histogram
	if len(sorted) == 0 {
		return h
	}
	i := 0
	for bound := 100 * time.Microsecond; ; bound = bound * 5 / 4 {
		n := 0
		for i < len(sorted) && sorted[i] <= bound {
			i++
			n++
		}
		h.Bounds = append(h.Bounds, bound)
		h.Counts = append(h.Counts, n)
		if i == len(sorted) {
			return h
		}
	}
}

// watchConnections samples how many connections the server's roles hold,
// until the returned function is called, which returns the most seen.
func watchConnections(ctx context.Context, opts strategy.Options) func() int {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	most := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = withAdmin(ctx, opts, "postgres", func(c *pgx.Conn) error {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				var n int
				if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1 OR usename = $2`,
					opts.AppUser, opts.ReaderUser).Scan(&n); err != nil {
					return err
				}
				mu.Lock()
				most = max(most, n)
				mu.Unlock()
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		})
	}()
	return func() int {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// rssKB is a process's resident memory (VmRSS), in KiB; 0 if unknown.
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func machine(ctx context.Context, o Options) (Machine, error) {
	m := Machine{
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS + "/" + runtime.GOARCH,
		Generator: fmt.Sprintf("built-in (Go net/http client, keep-alive, %d connections, closed loop: each connection sends its next request when the last answer is in; percentiles corrected for coordinated omission as HdrHistogram does, raw ones shown where they differ)", o.Connections),
	}
	if o.Wrk != "" {
		version := "wrk"
		if out, _ := exec.CommandContext(ctx, o.Wrk, "--version").CombinedOutput(); len(out) > 0 {
			version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
		m.Generator = fmt.Sprintf("%s: %d keep-alive connections on 2 threads, closed loop; latency percentiles as wrk measures them (not corrected for coordinated omission); no throughput over time. The isolation probe ran separately, on the built-in generator (Go, %d connections), which checks every row; so did the loads that write, which carry an ETag from one answer to the next request.", version, o.Connections, o.Connections)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += ", Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.MemoryMB = kb / 1024
			}
		}
	}
	err := withAdmin(ctx, o.Base, "postgres", func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT version(), current_setting('max_connections')::int").Scan(&m.PostgreSQL, &m.MaxConnections)
	})
	if err != nil {
		return m, fmt.Errorf("connect to PostgreSQL as %s: %w", o.Base.AdminUser, err)
	}
	return m, nil
}

// seedFlags writes the seed options as `tenancy seed` flags.
func seedFlags(s seed.Options) string {
	return fmt.Sprintf("--accounts %d --min-users %d --max-users %d --min-projects %d --max-projects %d --min-tasks %d --max-tasks %d --min-subtasks %d --max-subtasks %d --seed %d",
		s.Accounts, s.MinUsers, s.MaxUsers, s.MinProjects, s.MaxProjects, s.MinTasks, s.MaxTasks, s.MinSubtasks, s.MaxSubtasks, s.Seed)
}

// schemaChange ends the name of the migration compare times as the schema
// change in every strategy; migrations added after it are not it.
const schemaChange = "_subtask_priority.sql"

// heldBack is how many of strategy name's migrations (of the tenant tables)
// there are from the schema change on: what setup leaves unapplied.
func heldBack(name string) int {
	var fsys fs.FS
	switch name {
	case strategy.SingleSchema:
		fsys = singleschemamigrations.FS()
	case strategy.MultiSchema:
		fsys = multischemamigrations.Tenant()
	case strategy.MultiDB:
		fsys = multidbmigrations.FS()
	default:
		return 0
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0
	}
	slices.Sort(names)
	for i, n := range names {
		if strings.HasSuffix(n, schemaChange) {
			return len(names) - i
		}
	}
	return 0
}
