// Package directory is multidb's tenant directory: a table in the base
// database (PGDATABASE) that says which tenants exist and which PostgreSQL
// server and database holds each. Everything that goes over the tenants
// (setup, migrate, check, the cross-tenant report, the server's lookups)
// enumerates them with List, and finds one with Get. It is a package of
// its own so that the deployment audit reads the directory the way the
// strategy does, without importing it.
package directory

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"time"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

//go:embed migrations/*.sql
var files embed.FS

// Migrations are the base database's migrations: the directory table.
func Migrations() fs.FS {
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		panic(err) // the embedded directory is there, or the build failed
	}
	return sub
}

// Table is the directory's name, qualified.
const Table = "public.tenant_directory"

// Entry is one row of the directory.
type Entry struct {
	ID   models.TenantID
	Slug string
	Name string
	// Host and Port are empty and 0 for the deployment's own server.
	Host      string
	Port      int
	Database  string
	CreatedAt time.Time
}

// Server is where e's database is, as Options: opts on e's server.
func (e Entry) Server(opts strategy.Options) strategy.Options {
	if e.Host != "" {
		opts.Host, opts.Port = e.Host, e.Port
	}
	return opts
}

// Address is host:port of e's server, "" for the deployment's own.
func (e Entry) Address() string {
	if e.Host == "" {
		return ""
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// Key names e's database uniquely across servers: the database alone on
// the deployment's own server (as pools, logs and metrics have always
// named them), database@host:port elsewhere.
func (e Entry) Key() string {
	if e.Host == "" {
		return e.Database
	}
	return e.Database + "@" + e.Address()
}

// Location is e's database and server, for people.
func (e Entry) Location(opts strategy.Options) string {
	addr := e.Address()
	if addr == "" {
		addr = net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)) + " (PGHOST)"
	}
	return fmt.Sprintf("database %s on %s", e.Database, addr)
}

// Querier is what List and Get read through: a pool or a transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const columns = `id, slug, name, coalesce(host, ''), coalesce(port, 0), database, created_at`

func scan(s interface{ Scan(...any) error }, e *Entry) error {
	return s.Scan(&e.ID, &e.Slug, &e.Name, &e.Host, &e.Port, &e.Database, &e.CreatedAt)
}

// List returns every tenant in the directory, by slug: the one place that
// enumerates multidb's tenants.
func List(ctx context.Context, q Querier) ([]Entry, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+columns+` FROM `+Table+` ORDER BY slug`)
	if err != nil {
		return nil, fmt.Errorf("list the tenant directory: %w", missing(err))
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		if err := scan(rows, &e); err != nil {
			return nil, fmt.Errorf("list the tenant directory: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the tenant directory: %w", missing(err))
	}
	return out, nil
}

// Get returns slug's entry, or strategy.ErrTenantNotFound.
func Get(ctx context.Context, q Querier, slug string) (Entry, error) {
	var e Entry
	err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM `+Table+` WHERE slug = $1`, slug), &e)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("%w: %q is not in the tenant directory", strategy.ErrTenantNotFound, slug)
	}
	if err != nil {
		return e, fmt.Errorf("look up tenant %q in the directory: %w", slug, missing(err))
	}
	return e, nil
}

// missing explains a directory that is not there yet.
func missing(err error) error {
	if pg.IsPgError(err, "42P01") {
		return fmt.Errorf("the base database has no tenant directory; run `tenancy setup` (or `tenancy migrate`): %w", err)
	}
	return pg.Classify(err)
}

// Exec is what the writes need: a pool or a transaction.
type Exec interface {
	Querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Register lists the sample tenants tenant-0 .. tenant-(n-1) in their
// databases on the deployment's server, with the ids they have in every
// strategy (tenant-i is i+1), unless a slug is listed already; the id
// sequence is moved past them so a tenant added later gets a fresh id.
// It returns how many it added.
func Register(ctx context.Context, db Exec, opts strategy.Options, n int) (int, error) {
	slugs, dbs, ids := make([]string, n), make([]string, n), make([]int64, n)
	for i := range n {
		slugs[i], dbs[i], ids[i] = strategy.Slug(i), opts.TenantDatabase(i), int64(i)+1
	}
	res, err := db.ExecContext(ctx, `INSERT INTO `+Table+` (id, slug, database)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])
		ON CONFLICT DO NOTHING`, ids, slugs, dbs)
	if err != nil {
		return 0, fmt.Errorf("register tenant-0 to tenant-%d in the directory: %w", n-1, missing(err))
	}
	added, _ := res.RowsAffected()
	if _, err := db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), greatest(max(id), 1))
		FROM `+Table, Table); err != nil {
		return 0, fmt.Errorf("move the directory's id sequence: %w", pg.Classify(err))
	}
	return int(added), nil
}

// NextID draws an id for a tenant about to be added.
func NextID(ctx context.Context, db Querier) (models.TenantID, error) {
	var id models.TenantID
	if err := db.QueryRowContext(ctx, `SELECT nextval(pg_get_serial_sequence($1, 'id'))`, Table).Scan(&id); err != nil {
		return 0, fmt.Errorf("draw a tenant id: %w", missing(err))
	}
	return id, nil
}

// Insert lists e; strategy.ErrTenantExists when its slug (or its
// database) is listed already.
func Insert(ctx context.Context, db Exec, e Entry) (Entry, error) {
	var host, port any
	if e.Host != "" {
		host, port = e.Host, e.Port
	}
	err := db.QueryRowContext(ctx, `INSERT INTO `+Table+` (id, slug, name, host, port, database)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at`, int64(e.ID), e.Slug, e.Name, host, port, e.Database).Scan(&e.CreatedAt)
	if pg.IsPgError(err, "23505") {
		return e, fmt.Errorf("%w: %q (or its database %s) is in the tenant directory already", strategy.ErrTenantExists, e.Slug, e.Key())
	}
	if err != nil {
		return e, fmt.Errorf("add tenant %q to the directory: %w", e.Slug, missing(err))
	}
	return e, nil
}

// Delete removes slug's row; it is not an error when there is none.
func Delete(ctx context.Context, db Exec, slug string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM `+Table+` WHERE slug = $1`, slug); err != nil {
		return fmt.Errorf("remove tenant %q from the directory: %w", slug, missing(err))
	}
	return nil
}
