package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"tenancy/configs"
	"tenancy/strategy"
)

// tenantCommand is one `tenancy tenant <name>` subcommand.
type tenantCommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

// tenantCommands are the subcommands of `tenancy tenant`; one line adds
// another.
func tenantCommands() []tenantCommand {
	return []tenantCommand{
		{"create", "create an empty tenant: database, schema or account, migrated, in the directory", runTenantCreate},
		{"delete", "remove a tenant: every row, schema, role or database of it, and nothing else (--yes)", runTenantDelete},
		{"list", "list the tenants in the directory, and where each is", runTenantList},
		{"export", "write one tenant to a file that any strategy can import", runTenantExport},
		{"import", "load a tenant from an exported file, with new ids", runTenantImport},
	}
}

func tenantUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tenancy tenant <command> [arguments] [flags]\n\nCommands:")
	for _, c := range tenantCommands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `tenancy tenant <command> --help` for a command's flags. See docs/tenants.md.\n\n%s", configs.Help())
}

// runTenant is `tenancy tenant`: it dispatches to a subcommand.
func runTenant(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		tenantUsage(stderr)
		return usageError{errors.New("tenant: no command given")}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		tenantUsage(stdout)
		return nil
	}
	for _, c := range tenantCommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	tenantUsage(stderr)
	return usageError{fmt.Errorf("tenant: unknown command %q", args[0])}
}

// newTenantFlagSet is newFlagSet for `tenancy tenant <name> <operands>`.
func newTenantFlagSet(name, operands, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("tenant "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tenancy tenant %s %s[flags]\n\n%s\n\nFlags:\n", name, operands, synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s", configs.Help())
	}
	return fs
}

// parseOperands parses fs's flags, which may come before or after the
// operands, and returns exactly n operands; --help prints the usage.
func parseOperands(fs *flag.FlagSet, args []string, n int, stdout io.Writer) (operands []string, help bool, err error) {
	fs.SetOutput(io.Discard)
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return nil, true, nil
			}
			return nil, false, usageError{fmt.Errorf("%s: %w (see `tenancy %s --help`)", fs.Name(), err, fs.Name())}
		}
		if fs.NArg() == 0 {
			break
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(operands) != n {
		return nil, false, usageError{fmt.Errorf("%s: want %d argument(s), got %d %q (see `tenancy %s --help`)", fs.Name(), n, len(operands), operands, fs.Name())}
	}
	return operands, false, nil
}

func runTenantCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newTenantFlagSet("create", "<slug> ", `Creates an empty tenant and lists it in the directory, all of it or nothing:
multidb a database copied from the migrated template <PGDATABASE>_tenant-template
(on another server with --host and --port; that server gets the roles and a
template of its own the first time), migrated, granted and audited; multischema
a schema and a role, migrated and granted; singleschema an account. The account
is written with the name given. A running server serves it within seconds.
A slug is a lower-case DNS label: letters, digits and hyphens, a letter first.
A slug that exists already is refused, and nothing is written.`)
	name := fs.String("name", "", "the tenant's name (default: the slug)")
	host := fs.String("host", "", "multidb: the PostgreSQL server for the tenant's database (default PGHOST)")
	port := fs.Int("port", 0, "multidb: that server's port (required with --host)")
	operands, help, err := parseOperands(fs, args, 1, stdout)
	if help || err != nil {
		return err
	}
	slug := operands[0]
	if err := strategy.ValidateSlug(slug); err != nil {
		return usageError{fmt.Errorf("tenant create: %w", err)}
	}
	if (*host == "") != (*port == 0) {
		return usageError{errors.New("tenant create: give --host and --port together")}
	}
	if *name == "" {
		*name = slug
	}
	cfg, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	fmt.Fprintf(stdout, "tenant create %s (%s, database %s)\n", slug, cfg.Strategy.Strategy, cfg.Strategy.Database)
	start := time.Now()
	e, err := admin.AddTenant(ctx, strategy.TenantSpec{Slug: slug, Name: *name, Host: *host, Port: *port})
	if err != nil {
		return fmt.Errorf("tenant create %s: %w", slug, err)
	}
	fmt.Fprintf(stdout, "tenant %s: created in %s: %s (id %d)\n", e.Slug, time.Since(start).Round(time.Millisecond), e.Location, e.ID)
	return nil
}

func runTenantDelete(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newTenantFlagSet("delete", "<slug> ", `Removes a tenant: multidb its database (on whichever server holds it) and its
directory row; multischema its schema, its role and its account; singleschema
its account and every row with its account_id. Nothing of any other tenant is
touched. Without --yes it only says what would be removed. There is no undo:
take a backup first if you may want it back. A delete that fails half-way is
finished by running it again.`)
	yes := fs.Bool("yes", false, "really delete")
	operands, help, err := parseOperands(fs, args, 1, stdout)
	if help || err != nil {
		return err
	}
	slug := operands[0]
	_, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	e, err := admin.LookUpTenant(ctx, slug)
	if err != nil {
		return fmt.Errorf("tenant delete %s: %w", slug, err)
	}
	if !*yes {
		fmt.Fprintf(stdout, "tenant %s (id %d, %q) would lose:\n", e.Slug, e.ID, e.Name)
		for _, h := range e.Holds {
			fmt.Fprintf(stdout, "  %s\n", h)
		}
		return fmt.Errorf("tenant delete %s: refused without --yes; nothing was removed (run `tenancy tenant delete %s --yes` to remove the above)", slug, slug)
	}
	start := time.Now()
	e, err = admin.DeleteTenant(ctx, slug)
	if err != nil {
		return fmt.Errorf("tenant delete %s: %w", slug, err)
	}
	fmt.Fprintf(stdout, "tenant %s: deleted in %s: %s\n", e.Slug, time.Since(start).Round(time.Millisecond), strings.Join(e.Holds, "; "))
	return nil
}

func runTenantList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newTenantFlagSet("list", "", `Lists the tenants in the directory, by slug, and where each one's rows are
(multidb: database and server; multischema: schema and role; singleschema:
account). multidb lists the directory of the base database <PGDATABASE>.`)
	asJSON := fs.Bool("json", false, "print JSON (an array of {id, slug, name, location, host, port, database, holds, created_at})")
	if _, help, err := parseOperands(fs, args, 0, stdout); help || err != nil {
		return err
	}
	_, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	entries, err := admin.ListTenants(ctx)
	if err != nil {
		return fmt.Errorf("tenant list: %w", err)
	}
	if *asJSON {
		if entries == nil {
			entries = []strategy.TenantEntry{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SLUG\tID\tNAME\tLOCATION")
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", e.Slug, e.ID, e.Name, e.Location)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d tenants\n", len(entries))
	return nil
}
