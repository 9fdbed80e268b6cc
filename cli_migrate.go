package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"tenancy/strategy"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", `Runs pending migrations on every database of the strategy: each tenant's
database (multidb) or schema (multischema), several at once, or the one
shared database (singleschema). Each tenant's pending migrations apply in one
transaction, so a tenant that fails stays whole at its old version (the
server answers it 503, "being upgraded", and serves the others). By default
the run stops at the first failure: tenants already started finish, the rest
are listed as not attempted, and running it again finishes what is pending.
Databases must exist: see setup.`)
	var o strategy.MigrateOptions
	fs.IntVar(&o.Jobs, "jobs", 0, "tenants migrated at once (default: the strategy's, 4)")
	fs.IntVar(&o.Canary, "canary", 0, "migrate this many tenants first, and stop there if any fails")
	fs.BoolVar(&o.Continue, "continue", false, "go on past a failed tenant instead of stopping at the first failure")
	asJSON := fs.Bool("json", false, "print the per-tenant result as JSON (progress goes to stderr)")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	if o.Jobs < 0 || o.Jobs > 1000 {
		return usageError{fmt.Errorf("migrate: --jobs %d: want 1 to 1000 (0 for the default)", o.Jobs)}
	}
	if o.Canary < 0 {
		return usageError{fmt.Errorf("migrate: --canary %d: want 0 or more tenants", o.Canary)}
	}
	_, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	progress := stdout
	if *asJSON {
		progress = stderr
	}
	rep, err := admin.Migrate(ctx, progress, o)
	if len(rep.Databases) > 0 {
		if *asJSON {
			if jerr := writeMigrationJSON(stdout, admin.Name(), rep); jerr != nil {
				return jerr
			}
		} else {
			writeMigrationTable(stdout, rep)
		}
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// migrationCounts counts the databases in rep by status.
func migrationCounts(rep strategy.Report) map[string]int {
	counts := map[string]int{"applied": 0, "current": 0, "failed": 0, "not attempted": 0}
	for _, d := range rep.Databases {
		counts[d.Status()]++
	}
	return counts
}

// writeMigrationTable prints one line per database: who, what happened,
// from which version to which, and the error or why it was not attempted.
func writeMigrationTable(w io.Writer, rep strategy.Report) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tDATABASE OR SCHEMA\tSTATUS\tVERSION\tTIME\tERROR")
	for _, d := range rep.Databases {
		tenant := d.Tenant
		if tenant == "" {
			tenant = "(shared)"
		}
		version := fmt.Sprint(d.To)
		if len(d.Applied) > 0 {
			version = fmt.Sprintf("%d -> %d", d.From, d.To)
		}
		note := d.Skipped
		if d.Err != nil {
			note = d.Err.Error()
		}
		if d.Skipped != "" {
			version = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", tenant, d.Database, d.Status(), version, (d.CreateTime + d.MigrateTime).Round(time.Millisecond), note)
	}
	tw.Flush()
	c := migrationCounts(rep)
	fmt.Fprintf(w, "migrate: %d applied, %d already current, %d failed, %d not attempted, in %s\n",
		c["applied"], c["current"], c["failed"], c["not attempted"], rep.Elapsed.Round(time.Millisecond))
}

type migrationJSON struct {
	Strategy string          `json:"strategy"`
	Seconds  float64         `json:"seconds"`
	Counts   map[string]int  `json:"counts"`
	Results  []migrationItem `json:"results"`
}

type migrationItem struct {
	Tenant   string   `json:"tenant,omitempty"`
	Database string   `json:"database"`
	Status   string   `json:"status"`
	From     int64    `json:"from"`
	To       int64    `json:"to"`
	Applied  []string `json:"applied"`
	Error    string   `json:"error,omitempty"`
	Skipped  string   `json:"not_attempted_because,omitempty"`
	Seconds  float64  `json:"seconds"`
}

func writeMigrationJSON(w io.Writer, name string, rep strategy.Report) error {
	out := migrationJSON{Strategy: name, Seconds: rep.Elapsed.Seconds(), Counts: migrationCounts(rep)}
	for _, d := range rep.Databases {
		item := migrationItem{Tenant: d.Tenant, Database: d.Database, Status: d.Status(), From: d.From, To: d.To,
			Applied: d.Applied, Skipped: d.Skipped, Seconds: (d.CreateTime + d.MigrateTime).Seconds()}
		if item.Applied == nil {
			item.Applied = []string{}
		}
		if d.Err != nil {
			item.Error = d.Err.Error()
		}
		out.Results = append(out.Results, item)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
