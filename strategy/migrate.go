package strategy

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"gorm.io/gorm"
)

//go:embed migrations
var migrationFiles embed.FS

// Migrations returns the versioned migrations of a strategy, for tools that
// want to inspect them.
func Migrations(strategyName string) (fs.FS, error) {
	return fs.Sub(migrationFiles, path.Join("migrations", strategyName))
}

// DatabaseReport is what setup or migrate did to one database.
type DatabaseReport struct {
	Database string
	Created  bool
	From, To int64    // schema version before and after
	Applied  []string // migration files applied
	Err      error
	// Where the time went: creating the database, and migrating it
	// (including grants).
	CreateTime, MigrateTime time.Duration
}

func (d DatabaseReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", d.Database)
	if d.Created {
		b.WriteString("created, ")
	}
	switch {
	case d.Err != nil:
		fmt.Fprintf(&b, "FAILED at version %d: %v", d.To, d.Err)
	case len(d.Applied) == 0:
		fmt.Fprintf(&b, "up to date at version %d", d.To)
	default:
		fmt.Fprintf(&b, "migrated %d -> %d (%s)", d.From, d.To, strings.Join(d.Applied, ", "))
	}
	return b.String()
}

// Report lists what happened to each database, failures included, so one
// failing tenant does not hide the state of the others.
type Report struct {
	Databases []DatabaseReport
	Elapsed   time.Duration
}

// Summary says how many databases were created and migrated and where the
// time went; creation and migration times are summed over databases, which
// are set up several at a time, so they can add up to more than Elapsed.
func (r Report) Summary() string {
	var created, migrated int
	var create, mig time.Duration
	for _, d := range r.Databases {
		if d.Created {
			created++
		}
		if len(d.Applied) > 0 {
			migrated++
		}
		create += d.CreateTime
		mig += d.MigrateTime
	}
	return fmt.Sprintf("%d databases (%d created, %d migrated) in %s; creating took %s, migrating and granting %s, summed over databases",
		len(r.Databases), created, migrated, r.Elapsed.Round(time.Millisecond), create.Round(time.Millisecond), mig.Round(time.Millisecond))
}

// Err is nil when every database succeeded, and otherwise names each
// failed database.
func (r Report) Err() error {
	var errs []error
	for _, d := range r.Databases {
		if d.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Database, d.Err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d databases failed: %w", len(errs), len(r.Databases), errors.Join(errs...))
}

// migrate runs the pending migrations of one strategy on db. Each call has
// its own goose Provider, so tenant databases can migrate concurrently.
func migrate(ctx context.Context, db *sql.DB, strategyName string, rep *DatabaseReport) error {
	fsys, err := Migrations(strategyName)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if rep.From, err = p.GetDBVersion(ctx); err != nil {
		if IsPgError(err, "3D000") {
			return fmt.Errorf("database %q does not exist; run `tenancy setup` to create it", rep.Database)
		}
		return fmt.Errorf("read schema version: %w", err)
	}
	rep.To = rep.From
	results, err := p.Up(ctx)
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		results = partial.Applied
	}
	for _, r := range results {
		rep.Applied = append(rep.Applied, r.Source.Path)
		rep.To = r.Source.Version
	}
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

func printReport(w io.Writer, d DatabaseReport) {
	if w != nil {
		fmt.Fprintln(w, d.String())
	}
}

// errRollback ends a transaction that was run only to be undone.
var errRollback = errors.New("rolled back on request")

// createTenantTx runs body, which writes one account, in a transaction that
// commits only if ctx is still live when body is done (and commit is set).
// The statements themselves run on a context that cancellation does not cut
// short: a COMMIT interrupted half-way may take effect on the server while
// the client reports failure, and a summary of "what was written" would then
// be wrong. A cancelled ctx therefore means a clean rollback, decided here.
func createTenantTx(ctx context.Context, db *gorm.DB, commit bool, body func(tx *gorm.DB, work context.Context) error) error {
	work := context.WithoutCancel(ctx)
	err := db.WithContext(work).Transaction(func(tx *gorm.DB) error {
		if err := body(tx, work); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before commit: %w", err)
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}
