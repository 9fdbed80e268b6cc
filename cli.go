package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"tenancy/configs"
	"tenancy/handlers"
	"tenancy/seed"
	"tenancy/strategy"
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
		{"loadcheck", "fire concurrent mixed-tenant requests at a running server; fail on any leaked row", runLoadcheck},
	}
}

const environmentHelp = `Environment (libpq names for the admin/owner connection):
  STRATEGY            multidb or singleschema (default singleschema)
  PGHOST, PGPORT      PostgreSQL server (default 127.0.0.1, 5432)
  PGUSER, PGPASSWORD  admin role that owns the tables (default postgres)
  PGDATABASE          database, or prefix of multidb tenant databases (default tenancy)
  PGSSLMODE           libpq sslmode (default prefer)
  MULTIDB_COUNT       multidb tenant databases (default 5)
  APP_DB_USER, APP_DB_PASSWORD        role the server connects as (default <PGDATABASE>_app)
  READER_DB_USER, READER_DB_PASSWORD  read-only all-tenants role (default <PGDATABASE>_reader)
  DB_MAX_CONNS        connection budget of the server (default 16)
  DB_QUERY_EXEC_MODE  exec behind PgBouncer < 1.21 in transaction mode (default: pgx's)
  BASE_DOMAIN         tenants live at <slug>.<BASE_DOMAIN> (default localhost)
  ALL_TENANTS_VIEW    on/off: every tenant's data at <BASE_DOMAIN> (default on; no authentication)
  SECRET_KEY          required by serve, at least 16 characters
  TZ                  time zone of database sessions (e.g. UTC)
`

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tenancy <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `tenancy <command> --help` for a command's flags.\n\n%s", environmentHelp)
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
		fmt.Fprintf(fs.Output(), "\n%s", environmentHelp)
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
	admin, err := strategy.OpenAdmin(cfg.Strategy)
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
	if _, err := admin.Setup(ctx, stdout); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	fmt.Fprintln(stdout, "setup: done")
	return nil
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Runs pending migrations on every database of the strategy (each tenant database\nfor multidb) and prints what it applied. Databases must exist: see setup.")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	_, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.Migrate(ctx, stdout); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("seed", "Generates deterministic sample data (same options, same rows, in either strategy)\nand writes each account in its own transaction. Slugs are tenant-0, tenant-1, ...")
	d := seed.DefaultOptions()
	o := d
	accounts := fs.Int("accounts", 0, "accounts to create (default MULTIDB_COUNT for multidb, 1 for singleschema)")
	fs.IntVar(&o.MinUsers, "min-users", d.MinUsers, "fewest users per account")
	fs.IntVar(&o.MaxUsers, "max-users", d.MaxUsers, "most users per account")
	fs.IntVar(&o.MinProjects, "min-projects", d.MinProjects, "fewest projects per account")
	fs.IntVar(&o.MaxProjects, "max-projects", d.MaxProjects, "most projects per account")
	fs.IntVar(&o.MinTasks, "min-tasks", d.MinTasks, "fewest tasks per project, on average")
	fs.IntVar(&o.MaxTasks, "max-tasks", d.MaxTasks, "most tasks per project, on average")
	fs.IntVar(&o.MinSubtasks, "min-subtasks", d.MinSubtasks, "fewest subtasks per task, on average")
	fs.IntVar(&o.MaxSubtasks, "max-subtasks", d.MaxSubtasks, "most subtasks per task, on average")
	fs.BoolVar(&o.Rollback, "rollback", false, "do everything, commit nothing")
	fs.BoolVar(&o.SkipExisting, "skip-existing", false, "seed only the accounts that do not exist yet")
	fs.Int64Var(&o.Seed, "seed", d.Seed, "random seed (non-zero); the same seed gives the same data")
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
	seeder, err := seed.NewSeeder(admin, cfg.Strategy.TenantCount, stdout)
	if err != nil {
		return err
	}
	res, err := seeder.Run(ctx, o)
	if err != nil {
		if res.Counts.Accounts > 0 {
			fmt.Fprintf(stdout, "seed: stopped; %s were written in full\n", res.Counts)
		}
		return fmt.Errorf("seed: %w", err)
	}
	verb := "created"
	if o.Rollback {
		verb = "generated and rolled back (--rollback)"
	}
	fmt.Fprintf(stdout, "seed: %s %s in %s\n", verb, res.Counts, res.Elapsed.Round(time.Millisecond))
	return nil
}

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Serves the subtask list of each tenant at http://<slug>.<BASE_DOMAIN>:<port>/ and,\nfor singleschema, all tenants at http://<BASE_DOMAIN>:<port>/.")
	addr := fs.String("addr", ":8080", "address to listen on")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	cfg, err := configs.Load(getenv)
	if err != nil {
		return err
	}
	if err := cfg.RequireSecretKey(); err != nil {
		return err
	}
	log := newLogger(stderr)
	cfg.Strategy.Logger = log
	s, err := strategy.Open(ctx, cfg.Strategy)
	if err != nil {
		if errors.Is(err, strategy.ErrUnavailable) {
			return fmt.Errorf("serve: cannot reach PostgreSQL as %s: %w (is it running, and has `tenancy setup` been run?)", cfg.Strategy.AppUser, err)
		}
		return fmt.Errorf("serve: refusing to start: %w", err)
	}
	defer s.Close()
	h, err := handlers.New(s, handlers.Options{BaseDomain: cfg.BaseDomain, HideAllTenants: !cfg.AllTenantsView, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(stdout, "serving %s on %s: http://tenant-0.%s:%d/ (a tenant), http://%s:%d/ (%s)\n",
		s.Name(), ln.Addr(), cfg.BaseDomain, port, cfg.BaseDomain, port, baseDescription(s.Name()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: shut down: %w", err)
	}
	fmt.Fprintln(stdout, "serve: stopped")
	return nil
}

func baseDescription(name string) string {
	if name == strategy.SingleSchema {
		return "all tenants"
	}
	return "list of tenants"
}
