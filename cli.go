package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"tenancy/configs"
	"tenancy/internal/progress"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"setup", "create missing roles and databases, run migrations (idempotent)", runSetup},
		{"migrate", "run pending migrations on every database of the strategy", runMigrate},
		{"seed", "generate deterministic sample accounts, users, projects, tasks and subtasks", runSeed},
		{"serve", "serve the web app (tenant from the Host header)", runServe},
		{"report", "per tenant, its open subtasks and the projects with any (the cross-tenant report)", runReport},
		{"bench", "measure setup and seed on throwaway databases, against PostgreSQL's own COPY", runBench},
		{"check", "inspect roles, row-level security, policies, migrations and databases; exit 1 on findings", runCheck},
		{"loadcheck", "fire concurrent mixed-tenant requests at a running server; fail on any leaked row", runLoadcheck},
		{"compare", "measure the strategies side by side on identical data; write report.md and report.html", runCompare},
		{"tenant", "one tenant: create, delete, list, export to a file, import (`tenancy tenant --help`)", runTenant},
		{"operator", "operators, who sign in for the pages across tenants: create, list, delete", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
			return runOperator(ctx, args, getenv, os.Stdin, stdout, stderr)
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tenancy <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `tenancy <command> --help` for a command's flags.\n\n%s", configs.Help())
}

// run dispatches a command line. Only main exits.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return usageError{errors.New("no command given")}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	usage(stderr)
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

// parseFlags parses a command's flags; --help prints them and succeeds.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (help bool, err error) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return true, nil
		}
		return false, usageError{fmt.Errorf("%s: %w (see `tenancy %s --help`)", fs.Name(), err, fs.Name())}
	}
	if fs.NArg() > 0 {
		return false, usageError{fmt.Errorf("%s: unexpected argument %q (see `tenancy %s --help`)", fs.Name(), fs.Arg(0), fs.Name())}
	}
	return false, nil
}

func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tenancy %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s", configs.Help())
	}
	return fs
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func openAdmin(getenv func(string) string, stderr io.Writer) (configs.Config, strategy.Admin, error) {
	cfg, err := configs.Load(getenv)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Strategy.Logger = newLogger(stderr)
	admin, err := strategies.OpenAdmin(cfg.Strategy)
	return cfg, admin, err
}

func runSetup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("setup", "Creates the roles and databases that are missing and runs pending migrations.\nRunning it again changes nothing.")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	cfg, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	fmt.Fprintf(stdout, "setup %s on %s:%d (database %s)\n", admin.Name(), cfg.Strategy.Host, cfg.Strategy.Port, cfg.Strategy.Database)
	rep, err := admin.Setup(ctx, stdout)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	fmt.Fprintf(stdout, "setup: done: %s\n", rep.Summary())
	return nil
}

func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("seed", `Generates deterministic sample data (same options, same rows, in every strategy)
and bulk loads it with COPY. Into empty singleschema tables everything goes in
one transaction, with the indexes and foreign keys rebuilt after the rows (the
tables are locked meanwhile; Ctrl-C writes nothing); otherwise each account is
its own transaction, so an interrupted run keeps the accounts it finished.
Slugs are tenant-0, tenant-1, ... The summary ends with a checksum of the data
the options define: equal checksums mean equal data.`)
	o := seed.DefaultOptions()
	accounts := fs.Int("accounts", 0, "accounts to create (default MULTIDB_COUNT for multidb, 1 otherwise)")
	addDataFlags(fs, &o)
	fs.BoolVar(&o.Rollback, "rollback", false, "do everything, commit nothing")
	fs.BoolVar(&o.SkipExisting, "skip-existing", false, "seed only the accounts that do not exist yet")
	fs.BoolVar(&o.Reset, "reset", false, "delete every existing account and its data first")
	quiet := fs.Bool("quiet", false, "print only the summary (no progress)")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	cfg, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	o.Accounts = *accounts
	if !flagGiven(fs, "accounts") {
		o.Accounts = 1
		if cfg.Strategy.Strategy == strategy.MultiDB {
			o.Accounts = cfg.Strategy.TenantCount
		}
	}
	meter := progress.New(stdout, progress.ModeFor(stdout, *quiet), "accounts", "rows")
	messages := stdout
	if *quiet {
		messages = io.Discard
	}
	seeder, err := seed.NewSeeder(admin, cfg.Strategy.TenantCount, messages, seedMeter{meter})
	if err != nil {
		return err
	}
	res, err := seeder.Run(ctx, o)
	meter.Finish()
	if err != nil {
		if res.Counts.Accounts > 0 && !o.Rollback {
			fmt.Fprintf(stdout, "seed: stopped; %s were written in full\n", res.Counts)
		}
		return fmt.Errorf("seed: %w", err)
	}
	verb := "created"
	if o.Rollback {
		verb = "generated and rolled back (--rollback)"
	}
	removed := ""
	if res.Removed > 0 {
		removed = fmt.Sprintf(", after removing %d existing accounts", res.Removed)
	}
	secs := res.Elapsed.Seconds()
	fmt.Fprintf(stdout, "seed: %s %s in %s (%.0f rows/s)%s; checksum %s\n",
		verb, res.Counts, res.Elapsed.Round(time.Millisecond), float64(res.Counts.Rows())/max(secs, 1e-9), removed, res.Checksum)
	if !*quiet && !o.Rollback {
		// Pages need a signed-in user: say who can sign in.
		for i := range o.Accounts {
			if email, ok := seed.SignInEmail(o, i); ok {
				fmt.Fprintf(stdout, "seed: sign in at %s.%s/login (on serve's port) as %s, password %s\n", strategy.Slug(i), cfg.BaseDomain, email, seed.SamplePassword)
				break
			}
		}
	}
	return nil
}

// addDataFlags registers the options that decide the generated data (and
// how many workers make it), with o's values as defaults.
func addDataFlags(fs *flag.FlagSet, o *seed.Options) {
	d := *o
	fs.IntVar(&o.MinUsers, "min-users", d.MinUsers, "fewest users per account")
	fs.IntVar(&o.MaxUsers, "max-users", d.MaxUsers, "most users per account")
	fs.IntVar(&o.MinProjects, "min-projects", d.MinProjects, "fewest projects per account")
	fs.IntVar(&o.MaxProjects, "max-projects", d.MaxProjects, "most projects per account")
	fs.IntVar(&o.MinTasks, "min-tasks", d.MinTasks, "fewest tasks per project, on average")
	fs.IntVar(&o.MaxTasks, "max-tasks", d.MaxTasks, "most tasks per project, on average")
	fs.IntVar(&o.MinSubtasks, "min-subtasks", d.MinSubtasks, "fewest subtasks per task, on average")
	fs.IntVar(&o.MaxSubtasks, "max-subtasks", d.MaxSubtasks, "most subtasks per task, on average")
	fs.IntVar(&o.Workers, "workers", 0, "accounts generated and loaded at once (default: cores + 1); the data does not depend on it")
	fs.Int64Var(&o.Seed, "seed", d.Seed, "random seed (non-zero); the same seed gives the same data")
}

// seedMeter shows a seed run's progress on a progress.Meter.
type seedMeter struct{ m *progress.Meter }

func (s seedMeter) Report(p seed.Progress) { s.m.Update(p.Done, p.Total, p.Rows, p.Elapsed) }

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
