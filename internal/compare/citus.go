package compare

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"tenancy/internal/localcluster"
	"tenancy/strategy"
)

// CitusColumn names the column of singleschema on Citus: the run starts a
// coordinator and CitusWorkers workers of its own on this machine (see
// internal/localcluster), runs singleschema's setup, seed and loads there
// as for the other columns, and stops and removes the nodes after.
const CitusColumn = "citus"

// CitusWorkers is how many workers the Citus column's coordinator has.
const CitusWorkers = 2

// Columns are the names a run may measure: the strategies, then the Citus
// column.
func Columns() []string { return append(strategy.Names(), CitusColumn) }

// CitusAvailable says why the Citus column cannot run on this machine, or
// nil when it can.
func CitusAvailable() error { return localcluster.CitusInstalled() }

// startCitus starts the Citus column's nodes and makes opts's database on
// each, with the workers registered; opts is pointed at the coordinator,
// as singleschema.
func startCitus(ctx context.Context, opts *strategy.Options, say func(string, ...any)) (*localcluster.Citus, error) {
	start := time.Now()
	cluster, err := localcluster.StartCitus(ctx, CitusWorkers)
	if err != nil {
		return nil, fmt.Errorf("start Citus: %w", err)
	}
	ports := make([]string, len(cluster.Workers))
	for i, w := range cluster.Workers {
		ports[i] = fmt.Sprint(w.Port)
	}
	var dirs []string
	for _, n := range cluster.Nodes() {
		dirs = append(dirs, n.Dir())
	}
	// The directories are named so that, should compare be killed
	// outright, they can be found and removed by hand.
	say("citus: coordinator on 127.0.0.1:%d, workers on port %s, started in %s; their directories: %s", cluster.Coordinator.Port,
		strings.Join(ports, ", "), time.Since(start).Round(time.Millisecond), strings.Join(dirs, " "))
	*opts = onNode(*opts, cluster.Coordinator)
	opts.Strategy = strategy.SingleSchema
	if err := cluster.CreateDatabase(ctx, opts.Database); err != nil {
		return nil, errors.Join(fmt.Errorf("citus: %w", err), cluster.Stop())
	}
	// The run's own reading of the seeded data, as the admin, joins the
	// reference table of accounts with the distributed counts; the
	// runtime roles keep Citus's default, so no statement of the
	// server's may need a repartition join.
	err = withAdmin(ctx, *opts, opts.Database, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET citus.enable_repartition_joins = on",
			pgx.Identifier{opts.AdminUser}.Sanitize(), pgx.Identifier{opts.Database}.Sanitize()))
		return err
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("citus: let the admin run repartition joins: %w", err), cluster.Stop())
	}
	return cluster, nil
}

// onNode is opts with the admin connection of node: the postgres
// superuser, trusted on loopback.
func onNode(opts strategy.Options, node *localcluster.Node) strategy.Options {
	opts.Host, opts.Port, opts.SSLMode = "127.0.0.1", node.Port, "disable"
	opts.AdminUser, opts.AdminPassword = "postgres", ""
	return opts
}

// citusNodes are the admin options of every node, the coordinator first.
func citusNodes(opts strategy.Options, c *localcluster.Citus) []strategy.Options {
	var nodes []strategy.Options
	for _, n := range c.Nodes() {
		nodes = append(nodes, onNode(opts, n))
	}
	return nodes
}

// citusPlatform says what the Citus column ran on, for the Machine section.
func citusPlatform(ctx context.Context, opts strategy.Options, c *localcluster.Citus) (string, error) {
	v, err := c.Version(ctx, opts.Database)
	if err != nil {
		return "", fmt.Errorf("citus: %w", err)
	}
	var settings []string
	for _, s := range localcluster.CitusSettings() {
		if !strings.HasPrefix(s, "shared_preload_libraries") {
			settings = append(settings, s)
		}
	}
	return fmt.Sprintf("%s; a coordinator and %d workers, each a PostgreSQL cluster the run started on this machine (127.0.0.1, initdb defaults, %s), all on the same %d cores as the tenancy server and the load generator",
		v, len(c.Workers), strings.Join(settings, ", "), runtime.NumCPU()), nil
}

// coresBusy is how many of the machine's cores the four parts of c kept
// busy, on average, over its window (or elapsed, when c has none).
func coresBusy(c CPUUse, elapsed time.Duration) float64 {
	return busyOver(c.Total(), c, elapsed)
}

// machineBusy is how many of the machine's cores every process on it
// kept busy, on average, over the same time.
func machineBusy(c CPUUse, elapsed time.Duration) float64 {
	return busyOver(c.Machine, c, elapsed)
}

func busyOver(cpu time.Duration, c CPUUse, elapsed time.Duration) float64 {
	if c.Window > 0 {
		elapsed = c.Window
	}
	if elapsed <= 0 {
		return 0
	}
	return float64(cpu) / float64(elapsed)
}

// hasCitus says whether the run measures the Citus column.
func hasCitus(names []string) bool { return slices.Contains(names, CitusColumn) }
