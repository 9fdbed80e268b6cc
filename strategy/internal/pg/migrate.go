package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"tenancy/strategy"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"gorm.io/gorm"
)

// Migrate runs the migrations pending in fsys on db, all of them in one
// transaction. With schema "" they run on db's search_path with goose's
// default version table; otherwise in schema (first on the search_path,
// for the transaction only, so any pooled connection will do), with the
// version table in schema too.
// A database is never left between versions: when one file fails, the
// files before it are undone with it and rep shows nothing applied, so a
// fleet migration that fails on one tenant leaves that tenant where it
// was, and re-running it starts from the same place. goose applies each
// file in a transaction of its own and has no option to group them (its
// issues #222 and #485), so this reads goose's files and writes goose's
// version table, through goose's own store, in goose's format: goose's
// tools still read the result. Concurrent calls on one version table wait
// for each other (a transaction-scoped advisory lock).
func Migrate(ctx context.Context, db *sql.DB, fsys fs.FS, schema string, rep *strategy.DatabaseReport) error {
	return MigrateTable(ctx, db, fsys, schema, goose.DefaultTablename, rep)
}

// MigrateTable is Migrate with a version table of another name, for a
// second set of migrations in the same schema (the operators' tables,
// which each strategy keeps beside its own).
func MigrateTable(ctx context.Context, db *sql.DB, fsys fs.FS, schema, table string, rep *strategy.DatabaseReport) error {
	if schema != "" {
		table = QuoteIdent(schema) + "." + table
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true), goose.WithTableName(table))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	store, err := database.NewStore(database.DialectPostgres, table)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		if IsPgError(err, "3D000") {
			return fmt.Errorf("database %q does not exist; run `tenancy setup` to create it", rep.Database)
		}
		return fmt.Errorf("read schema version: %w", err)
	}
	defer tx.Rollback()
	if schema != "" {
		if _, err := tx.ExecContext(ctx, `SELECT set_config('search_path', $1, true)`, QuoteIdent(schema)+", public"); err != nil {
			return fmt.Errorf("migrate schema %s: %w", schema, err)
		}
	}
	applied, err := appliedVersions(ctx, tx, store, table)
	if err != nil {
		return err
	}
	for v := range applied {
		rep.From = max(rep.From, v)
	}
	rep.To = rep.From
	var done []string
	for _, src := range p.ListSources() {
		if applied[src.Version] {
			continue
		}
		if src.Version < rep.From {
			return fmt.Errorf("migration %s is older than version %d, which is applied: goose would refuse it too; renumber it", src.Path, rep.From)
		}
		up, err := upSection(fsys, src.Path)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, up); err != nil {
			return fmt.Errorf("apply migrations: %s: %w (nothing was applied: the earlier files of this run were undone too)", src.Path, err)
		}
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: src.Version}); err != nil {
			return fmt.Errorf("apply migrations: %s: %w", src.Path, err)
		}
		done = append(done, src.Path)
	}
	if len(done) == 0 {
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply migrations: commit: %w", err)
	}
	rep.Applied = done
	rep.To = p.ListSources()[len(p.ListSources())-1].Version
	return nil
}

// appliedVersions locks table's migrations for tx, makes the version table
// (with goose's version 0) when it is missing, and returns the versions
// applied: a version's latest row says whether it is, as goose writes a row
// for each up and each down.
func appliedVersions(ctx context.Context, tx *sql.Tx, store database.Store, table string) (map[int64]bool, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('tenancy migrate ' || $1))`, table); err != nil {
		return nil, fmt.Errorf("wait for other migrations of %s: %w", table, err)
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up %s: %w", table, err)
	}
	if !exists {
		if err := store.CreateVersionTable(ctx, tx); err != nil {
			return nil, fmt.Errorf("create %s: %w", table, err)
		}
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: 0}); err != nil {
			return nil, fmt.Errorf("create %s: %w", table, err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT version_id FROM (
		SELECT DISTINCT ON (version_id) version_id, is_applied FROM `+table+` ORDER BY version_id, id DESC) v
		WHERE is_applied`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	applied := map[int64]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// upSection is the "-- +goose Up" part of the migration file at path, to
// be sent as one simple query (PostgreSQL splits the statements itself, so
// goose's StatementBegin/End markers are only comments here). A file that
// must run outside a transaction, or asks goose to substitute environment
// variables, is refused rather than run differently from goose.
func upSection(fsys fs.FS, path string) (string, error) {
	text, err := fs.ReadFile(fsys, path)
	if err != nil {
		return "", fmt.Errorf("read migration %s: %w", path, err)
	}
	var up strings.Builder
	in := false
	for _, line := range strings.SplitAfter(string(text), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "-- +goose "); ok {
			switch strings.ToUpper(strings.TrimSpace(rest)) {
			case "UP":
				in = true
				continue
			case "DOWN":
				return up.String(), nil
			case "STATEMENTBEGIN", "STATEMENTEND":
			default:
				return "", fmt.Errorf("migration %s: %q is not supported here: each tenant's migrations run in one transaction", path, strings.TrimSpace(line))
			}
		}
		if in {
			up.WriteString(line)
		}
	}
	if !in {
		return "", fmt.Errorf("migration %s has no \"-- +goose Up\" section", path)
	}
	return up.String(), nil
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

// RequireCurrent returns strategy.ErrTenantUpgrading unless every
// migration in fsys is applied in schema, as goose's version table there
// says. A version table the connected role may not read counts as not
// current: the grant that lets it read the table comes with the migrate
// that brings it up to date.
func RequireCurrent(ctx context.Context, q Querier, fsys fs.FS, schema string) error {
	current, err := AtEveryVersion(ctx, q, fsys, schema, goose.DefaultTablename)
	switch {
	case err == nil && current >= 0:
		return nil
	case err != nil && !IsPgError(err, "42501"):
		return err
	}
	versions, verr := Versions(fsys)
	if verr != nil || len(versions) == 0 {
		return verr
	}
	return fmt.Errorf("%w: its schema is older than this server's version %d; `tenancy migrate` finishes it, and `tenancy check` lists every tenant behind",
		strategy.ErrTenantUpgrading, versions[len(versions)-1])
}

// Querier is what reading needs of a pool, a connection or a
// transaction.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Versions are the migration versions of the files in fsys, in order.
func Versions(fsys fs.FS) ([]int64, error) {
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var out []int64
	for _, f := range files {
		v, err := goose.NumericComponent(f)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", f, err)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// AtEveryVersion returns the version of schema when every migration in
// fsys is applied there by goose's version table schema.table, and -1
// when one is pending or the table does not exist. It only reads, so
// callers can skip goose (and the connection it needs) when nothing is
// pending, and a server can tell a tenant still being upgraded.
func AtEveryVersion(ctx context.Context, q Querier, fsys fs.FS, schema, table string) (int64, error) {
	versions, err := Versions(fsys)
	if err != nil {
		return -1, err
	}
	qualified := QuoteIdent(schema) + "." + QuoteIdent(table)
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, qualified).Scan(&exists); err != nil {
		return -1, fmt.Errorf("look up %s: %w", qualified, Classify(err))
	}
	if !exists {
		return -1, nil
	}
	// A version's latest row says whether it is applied (goose writes a
	// row for each up and each down).
	rows, err := q.QueryContext(ctx, `SELECT version_id FROM (
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
	for _, v := range versions {
		if !applied[v] {
			return -1, nil
		}
		current = max(current, v)
	}
	return current, nil
}
