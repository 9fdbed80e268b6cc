// Package seedbench measures seeding on throwaway databases: setup, seed
// (rows/s, checksum, peak memory) and, for singleschema, the time PostgreSQL
// itself takes to COPY the same rows into an empty copy of the schema, so
// the seeder can be judged against the floor the database sets.
package seedbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

// Options are the deployment to copy settings from and what to seed.
type Options struct {
	// Base gives the server, the admin role and the database name prefix;
	// the benchmark makes its own databases and roles from it and drops
	// them at the end.
	Base strategy.Options
	Seed seed.Options
	// Baseline also times PostgreSQL's own COPY of the seeded rows
	// (singleschema only).
	Baseline bool
}

// Result is what a run measured.
type Result struct {
	Strategy  string
	Database  string
	Setup     strategy.Report
	Seed      seed.Result
	PeakRSSKB int64 // of this process, after seeding and before the baseline

	// The baseline: the seeded tables exported with COPY TO (binary) and
	// loaded with COPY FROM, one table after another on one connection,
	// into a freshly set-up database with the same schema.
	ExportTime, CopyTime time.Duration
	CopyRows             int64
	ExportBytes          int64
}

// Ratio is seed time over COPY time.
func (r Result) Ratio() float64 {
	if r.CopyTime <= 0 {
		return 0
	}
	return r.Seed.Elapsed.Seconds() / r.CopyTime.Seconds()
}

// tables in the order that satisfies the foreign keys.
var tables = []string{"accounts", "users", "projects", "tasks", "subtasks"}

// Run sets up fresh databases, seeds them, measures, and drops them, on
// success, failure or cancellation alike. progress may be nil.
func Run(ctx context.Context, o Options, progress io.Writer, reporter seed.Reporter) (res Result, err error) {
	if progress == nil {
		progress = io.Discard
	}
	opts := o.Base.Throwaway("bench")
	if opts.Strategy == strategy.MultiDB {
		opts.TenantCount = o.Seed.Accounts
	}
	res.Strategy, res.Database = opts.Strategy, opts.Database

	admin, err := strategies.OpenAdmin(opts)
	if err != nil {
		return res, err
	}
	// Dropped whatever happens, Ctrl-C included: hence a context that the
	// cancellation does not reach, with a bound of its own.
	defer func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if derr := admin.Destroy(cleanup); derr != nil {
			derr = fmt.Errorf("dropping the benchmark's databases failed (drop %s* by hand): %w", opts.Database, derr)
			err = errors.Join(err, derr)
		}
	}()

	fmt.Fprintf(progress, "setup: %s, %s\n", opts.Strategy, opts.Database)
	if res.Setup, err = admin.Setup(ctx, nil); err != nil {
		return res, fmt.Errorf("setup: %w", err)
	}
	fmt.Fprintf(progress, "setup: %s\n", res.Setup.Summary())

	seeder, err := seed.NewSeeder(admin, opts.TenantCount, nil, reporter)
	if err != nil {
		return res, err
	}
	if res.Seed, err = seeder.Run(ctx, o.Seed); err != nil {
		return res, err
	}
	res.PeakRSSKB = peakRSSKB()

	if o.Baseline && opts.Strategy == strategy.SingleSchema {
		if err := baseline(ctx, opts, &res, progress); err != nil {
			return res, fmt.Errorf("COPY baseline: %w", err)
		}
	}
	return res, nil
}

// baseline exports the seeded tables to files and times loading them into
// a second, freshly set-up database.
func baseline(ctx context.Context, opts strategy.Options, res *Result, progress io.Writer) error {
	dir, err := os.MkdirTemp("", "tenancy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	src, err := pgx.Connect(ctx, opts.AdminDSN(opts.Database))
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	start := time.Now()
	for _, t := range tables {
		f, err := os.Create(dir + "/" + t)
		if err != nil {
			return err
		}
		_, err = src.PgConn().CopyTo(ctx, f, "COPY "+t+" TO STDOUT (FORMAT binary)")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("export %s: %w", t, err)
		}
		if st, err := os.Stat(f.Name()); err == nil {
			res.ExportBytes += st.Size()
		}
	}
	res.ExportTime = time.Since(start)

	copyOpts := opts
	copyOpts.Database = opts.Database + "_copy"
	copyOpts.AppUser, copyOpts.ReaderUser = copyOpts.Database+"_app", copyOpts.Database+"_reader"
	admin, err := strategies.OpenAdmin(copyOpts)
	if err != nil {
		return err
	}
	defer func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := admin.Destroy(cleanup); err != nil {
			fmt.Fprintf(progress, "baseline: dropping %s failed (drop it by hand): %v\n", copyOpts.Database, err)
		}
	}()
	if _, err := admin.Setup(ctx, nil); err != nil {
		return fmt.Errorf("set up the empty copy: %w", err)
	}
	dst, err := pgx.Connect(ctx, opts.AdminDSN(copyOpts.Database))
	if err != nil {
		return err
	}
	defer dst.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(progress, "baseline: COPY of the same rows into %s\n", copyOpts.Database)
	start = time.Now()
	for _, t := range tables {
		f, err := os.Open(dir + "/" + t)
		if err != nil {
			return err
		}
		tag, err := dst.PgConn().CopyFrom(ctx, f, "COPY "+t+" FROM STDIN (FORMAT binary)")
		f.Close()
		if err != nil {
			return fmt.Errorf("load %s: %w", t, err)
		}
		res.CopyRows += tag.RowsAffected()
	}
	res.CopyTime = time.Since(start)
	return nil
}

// peakRSSKB is the most memory this process has held, in KiB (Linux).
func peakRSSKB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss
}
