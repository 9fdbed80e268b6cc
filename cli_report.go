package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"tenancy/configs"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

// runReport is `tenancy report`: the cross-tenant report of open subtasks,
// read as the server reads it (the app and reader roles, never the
// admin), printed as a table or as JSON.
func runReport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", `Prints, for every tenant, its open (incomplete) subtasks and how many of its
projects have any, most open first, then by slug; the same report as
GET /reports/open-subtasks on the base domain. It connects as the app and
reader roles, as serve does, never as the admin (PGUSER).

singleschema reads it in one statement as the read-only reader role;
multischema reads the tenant schemas as the reader, 100 schemas a statement;
multidb visits every tenant database, --concurrency at a time, within
--timeout, and lists the tenants it could not read, with the reason, instead
of failing. Exits 1 when a tenant could not be read (the others are printed).`)
	asJSON := fs.Bool("json", false, "print the report as JSON, as the web page does for Accept: application/json")
	timeout := fs.Duration("timeout", strategy.DefaultReportTimeout,
		"the whole report's time; multidb lists the tenants it has not read by then, the others fail the report")
	concurrency := fs.Int("concurrency", 0,
		"multidb: tenant databases read at once (default DB_MAX_CONNS, the connection budget: this process serves no one else)")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	var problems []error
	if *timeout <= 0 {
		problems = append(problems, fmt.Errorf("--timeout %s: want a positive duration such as 5s", *timeout))
	}
	if flagGiven(fs, "concurrency") && *concurrency < 1 {
		problems = append(problems, fmt.Errorf("--concurrency %d: want at least 1", *concurrency))
	}
	if err := errors.Join(problems...); err != nil {
		return usageError{fmt.Errorf("report: %w", err)}
	}
	cfg, err := configs.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	cfg.Strategy.Logger = log
	if !flagGiven(fs, "concurrency") {
		*concurrency = cfg.Strategy.Budget()
	}
	s, err := strategies.Open(ctx, cfg.Strategy)
	if err != nil {
		if errors.Is(err, strategy.ErrUnavailable) {
			return fmt.Errorf("report: cannot reach PostgreSQL as %s: %w (is it running, and has `tenancy setup` been run?)", cfg.Strategy.AppUser, err)
		}
		return fmt.Errorf("report: refusing to connect: %w", err)
	}
	defer s.Close()
	rep, err := s.ReportOpenSubtasks(models.NewContextForAllTenants(ctx), strategy.ReportOptions{Timeout: *timeout, Concurrency: *concurrency})
	if err != nil {
		if errors.Is(err, strategy.ErrUnavailable) {
			return fmt.Errorf("report: %w (try again, or give it more --timeout)", err)
		}
		return fmt.Errorf("report: %w", err)
	}
	for _, u := range rep.Unreachable {
		log.Warn("report: tenant not read", "tenant", u.Slug, "err", u.Err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	} else {
		writeReport(stdout, rep)
	}
	if !rep.Complete() {
		slugs := make([]string, len(rep.Unreachable))
		for i, u := range rep.Unreachable {
			slugs[i] = u.Slug
		}
		return fmt.Errorf("report: %d of %d tenants could not be read (%s); the others are reported; each reason says what to do, the log above has the errors",
			len(rep.Unreachable), len(rep.Unreachable)+len(rep.Rows), strings.Join(slugs, ", "))
	}
	return nil
}

// writeReport prints rep as a table: slug and name left-aligned, the
// counts right-aligned, then the tenants not read with their reasons.
func writeReport(w io.Writer, rep strategy.OpenSubtasksReport) {
	fmt.Fprintf(w, "open subtasks by tenant: %s, %d tenants, read in %s\n\n", rep.Strategy, len(rep.Rows), rep.Elapsed.Round(100*time.Microsecond))
	header := []string{"TENANT", "NAME", "OPEN SUBTASKS", "PROJECTS WITH OPEN SUBTASKS"}
	cells := [][]string{header}
	for _, r := range rep.Rows {
		cells = append(cells, []string{r.Slug, r.Name, strconv.FormatInt(r.OpenSubtasks, 10), strconv.FormatInt(r.ProjectsWithOpenSubtasks, 10)})
	}
	width := make([]int, len(header))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range cells {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case i >= 2: // counts, right-aligned
				b.WriteString("  " + pad + c)
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + c + pad)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	if len(rep.Rows) == 0 {
		fmt.Fprintln(w, "(no tenants)")
	}
	if len(rep.Unreachable) > 0 {
		fmt.Fprintf(w, "\nnot read (%d), so missing above:\n", len(rep.Unreachable))
		for _, u := range rep.Unreachable {
			fmt.Fprintf(w, "  %s: %s\n", u.Slug, u.Reason)
		}
	}
}
