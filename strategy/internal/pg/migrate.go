package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"tenancy/strategy"

	"github.com/pressly/goose/v3"
	"gorm.io/gorm"
)

// Migrate runs the pending migrations in fsys on db (opts add goose
// options, such as a version table of its own). Each call has
// its own goose Provider, so tenant databases can migrate concurrently.
func Migrate(ctx context.Context, db *sql.DB, fsys fs.FS, rep *strategy.DatabaseReport, opts ...goose.ProviderOption) error {
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, append([]goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}, opts...)...)
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

func PrintReport(w io.Writer, d strategy.DatabaseReport) {
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
func CreateTenantTx(ctx context.Context, db *gorm.DB, commit bool, body func(tx *gorm.DB, work context.Context) error) error {
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

// AtEveryVersion returns the version of schema when every migration in
// fsys is applied there by goose's version table schema.table, and -1
// when one is pending or the table does not exist. It only reads, so
// callers can skip goose (and the connection it needs) when nothing is
// pending.
func AtEveryVersion(ctx context.Context, db *sql.DB, fsys fs.FS, schema, table string) (int64, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return -1, fmt.Errorf("load migrations: %w", err)
	}
	qualified := QuoteIdent(schema) + "." + QuoteIdent(table)
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, qualified).Scan(&exists); err != nil {
		return -1, fmt.Errorf("look up %s: %w", qualified, Classify(err))
	}
	if !exists {
		return -1, nil
	}
	// A version's latest row says whether it is applied (goose writes a
	// row for each up and each down).
	rows, err := db.QueryContext(ctx, `SELECT version_id FROM (
		SELECT DISTINCT ON (version_id) version_id, is_applied FROM `+qualified+` ORDER BY version_id, id DESC) v
		WHERE is_applied`)
	if err != nil {
		return -1, fmt.Errorf("read %s: %w", qualified, Classify(err))
	}
	defer rows.Close()
	applied := map[int64]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return -1, err
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return -1, fmt.Errorf("read %s: %w", qualified, Classify(err))
	}
	var current int64
	for _, src := range p.ListSources() {
		if !applied[src.Version] {
			return -1, nil
		}
		current = max(current, src.Version)
	}
	return current, nil
}
