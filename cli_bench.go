package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"tenancy/configs"
	"tenancy/internal/pgsettings"
	"tenancy/internal/progress"
	"tenancy/internal/seedbench"
	"tenancy/seed"
	"tenancy/strategy"
)

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", `Sets up fresh, uniquely named databases (<PGDATABASE>_bench_<random>) for the
strategy, seeds them, and prints setup time, seed time, rows/s, the checksum and
peak memory. For singleschema it then exports the seeded rows with COPY TO and
times PostgreSQL loading them with COPY FROM into an empty copy of the schema:
the floor any seeder is measured against. Everything it creates is dropped at
the end, on Ctrl-C too. For multidb, --accounts is also the number of tenant
databases.`)
	o := seed.DefaultOptions()
	fs.IntVar(&o.Accounts, "accounts", 2000, "accounts to seed")
	addDataFlags(fs, &o)
	name := fs.String("strategy", "", configs.StrategyChoices()+" (default: STRATEGY)")
	noBaseline := fs.Bool("no-baseline", false, "skip the COPY baseline")
	quiet := fs.Bool("quiet", false, "print only the figures (no progress)")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	cfg, err := configs.Load(getenv)
	if err != nil {
		return err
	}
	if *name != "" {
		cfg.Strategy.Strategy = *name
	}
	tenants := 0
	if cfg.Strategy.Strategy == strategy.MultiDB {
		tenants = o.Accounts
	}
	if err := o.Validate(cfg.Strategy.Strategy, tenants); err != nil {
		return usageError{fmt.Errorf("bench: %w", err)}
	}
	cfg.Strategy.Logger = newLogger(stderr)
	// Seeding opens a connection per worker, and setup up to two per tenant
	// database for four at a time, plus the run's own: bench needs no
	// raised max_connections (multidb's 100 tenants seed on a server of
	// 100), only that many free.
	need := o.EffectiveWorkers() + 2*4 + 2
	warnOfServer(ctx, stderr, "bench", cfg.Strategy, func(s pgsettings.Server) string {
		return s.ConnectionsWarning(need, fmt.Sprintf("seeding with %d workers", o.EffectiveWorkers()))
	})
	meter := progress.New(stdout, progress.ModeFor(stdout, *quiet), "accounts", "rows")
	messages := stdout
	if *quiet {
		messages = io.Discard
	}
	res, err := seedbench.Run(ctx, seedbench.Options{Base: cfg.Strategy, Seed: o, Baseline: !*noBaseline}, messages, seedMeter{meter})
	meter.Finish()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	rows := res.Seed.Counts.Rows()
	fmt.Fprintf(stdout, "bench: %s, %d accounts, %d workers\n", res.Strategy, o.Accounts, o.EffectiveWorkers())
	fmt.Fprintf(stdout, "  setup           %8s  (%s)\n", round(res.Setup.Elapsed), res.Setup.Summary())
	fmt.Fprintf(stdout, "  seed            %8s  %d rows, %.0f rows/s, checksum %s\n", round(res.Seed.Elapsed), rows, float64(rows)/res.Seed.Elapsed.Seconds(), res.Seed.Checksum)
	fmt.Fprintf(stdout, "  setup + seed    %8s\n", round(res.Setup.Elapsed+res.Seed.Elapsed))
	fmt.Fprintf(stdout, "  peak RSS        %8.1f MB (this process, after seeding)\n", float64(res.PeakRSSKB)/1024)
	if res.CopyTime > 0 {
		fmt.Fprintf(stdout, "  COPY TO         %8s  %.1f MB exported (binary)\n", round(res.ExportTime), float64(res.ExportBytes)/(1<<20))
		fmt.Fprintf(stdout, "  COPY FROM       %8s  %d rows, %.0f rows/s, one connection, into an empty copy of the schema\n", round(res.CopyTime), res.CopyRows, float64(res.CopyRows)/res.CopyTime.Seconds())
		fmt.Fprintf(stdout, "  seed / COPY     %8.2fx\n", res.Ratio())
	}
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
