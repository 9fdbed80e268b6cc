// Package operators keeps what belongs to no tenant: the operators, who
// sign in on the base domain for the pages that read across tenants, and
// the sessions signed out before they expired, which every server
// refuses. Each strategy keeps both tables in the one place of its
// deployment that is outside every tenant (multidb's base database, the
// shared database's public schema in multischema and singleschema), with
// the migrations here and a goose version table of their own, so the
// same files serve all three and never interleave with a strategy's own
// versions (or with the migrations compare holds back).
package operators

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

//go:embed migrations/*.sql
var files embed.FS

// VersionTable is goose's version table of these migrations.
const VersionTable = "goose_operators_version"

// Tables, unqualified: they are in public wherever they are.
const (
	OperatorsTable = "operators"
	RevokedTable   = "revoked_sessions"
)

// Migrations are the operators' tables' migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		panic(err) // the embedded directory is there, or the build failed
	}
	return sub
}

// Migrate runs the pending migrations on db (the admin's pool), in
// public. Its applied files are added to rep's, prefixed "operators/"; its
// versions are not rep's, which are the strategy's own.
func Migrate(ctx context.Context, db *sql.DB, rep *strategy.DatabaseReport) error {
	own := strategy.DatabaseReport{Database: rep.Database}
	if err := pg.MigrateTable(ctx, db, Migrations(), "", VersionTable, &own); err != nil {
		return fmt.Errorf("operators' tables: %w", err)
	}
	for _, f := range own.Applied {
		rep.Applied = append(rep.Applied, "operators/"+f)
	}
	return nil
}

// Grants are the statements that give app, the server's role, what
// sign-in and sign-out need and no more: reading operators (writing them
// is the admin's), recording, reading and purging sign-outs. They follow
// each strategy's REVOKE ALL ON ALL TABLES, in its transaction.
func Grants(app string) []string {
	r := pg.QuoteIdent(app)
	return []string{
		"REVOKE ALL ON public." + OperatorsTable + ", public." + RevokedTable + " FROM PUBLIC, " + r,
		"GRANT SELECT ON public." + OperatorsTable + " TO " + r,
		"GRANT SELECT, INSERT, DELETE ON public." + RevokedTable + " TO " + r,
	}
}

// AppGrants is Grants as the deployment audit compares privileges.
func AppGrants() map[string][]string {
	return map[string][]string{
		OperatorsTable: {"SELECT"},
		RevokedTable:   {"SELECT", "INSERT", "DELETE"},
	}
}

// Querier is a pool or a transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// missing explains tables that are not there yet.
func missing(err error) error {
	if pg.IsPgError(err, "42P01") {
		return fmt.Errorf("the operators' tables are missing; run `tenancy migrate`: %w", err)
	}
	return pg.Classify(err)
}

// ByEmail is every strategy's Strategy.OperatorByEmail, on the server's
// pool there.
func ByEmail(ctx context.Context, q Querier, email string) (models.Operator, error) {
	var o models.Operator
	err := q.QueryRowContext(ctx, `SELECT id, email, password, created_at FROM public.operators WHERE lower(email) = lower($1)`, email).
		Scan(&o.ID, &o.Email, &o.Password, &o.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return models.Operator{}, strategy.ErrOperatorNotFound
	}
	if err != nil {
		return models.Operator{}, fmt.Errorf("look up an operator by email: %w", missing(err))
	}
	return o, nil
}

// Create is every strategy's Admin.CreateOperator, on the admin's pool.
func Create(ctx context.Context, q Querier, email, hash string) (models.Operator, error) {
	if email == "" || hash == "" {
		return models.Operator{}, errors.New("an operator needs an email and a password hash")
	}
	o := models.Operator{Email: email, Password: hash}
	err := q.QueryRowContext(ctx, `INSERT INTO public.operators (email, password) VALUES ($1, $2) RETURNING id, created_at`, email, hash).
		Scan(&o.ID, &o.CreatedAt)
	if pg.IsPgError(err, "23505") {
		return models.Operator{}, fmt.Errorf("%w: %q (emails are compared without case); nothing was written", strategy.ErrOperatorExists, email)
	}
	if err != nil {
		return models.Operator{}, fmt.Errorf("create operator %q: %w", email, missing(err))
	}
	return o, nil
}

// List is every strategy's Admin.Operators.
func List(ctx context.Context, q Querier) ([]models.Operator, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, email, created_at FROM public.operators ORDER BY lower(email)`)
	if err != nil {
		return nil, fmt.Errorf("list the operators: %w", missing(err))
	}
	defer rows.Close()
	var out []models.Operator
	for rows.Next() {
		var o models.Operator
		if err := rows.Scan(&o.ID, &o.Email, &o.CreatedAt); err != nil {
			return nil, fmt.Errorf("list the operators: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Delete is every strategy's Admin.DeleteOperator.
func Delete(ctx context.Context, q Querier, email string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM public.operators WHERE lower(email) = lower($1)`, email)
	if err != nil {
		return fmt.Errorf("delete operator %q: %w", email, missing(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", strategy.ErrOperatorNotFound, email)
	}
	return nil
}

// Revoke is every strategy's Strategy.RevokeSession: one statement, which
// purges the expired records on the way (a sign-out is rare next to page
// reads, and the purge reads an index), so the table holds no more than
// the sign-outs of one session lifetime.
func Revoke(ctx context.Context, q Querier, id string, expires time.Time) error {
	_, err := q.ExecContext(ctx, `WITH purged AS (DELETE FROM public.revoked_sessions WHERE expires_at < now())
		INSERT INTO public.revoked_sessions (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, expires)
	if err != nil {
		return fmt.Errorf("revoke a session: %w", missing(err))
	}
	return nil
}

// Revoked is every strategy's Strategy.RevokedSessions.
func Revoked(ctx context.Context, q Querier, since time.Time) ([]strategy.RevokedSession, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, expires_at, revoked_at FROM public.revoked_sessions
		WHERE revoked_at >= $1 AND expires_at > now() ORDER BY revoked_at, id`, since)
	if err != nil {
		return nil, fmt.Errorf("read the revoked sessions: %w", missing(err))
	}
	defer rows.Close()
	var out []strategy.RevokedSession
	for rows.Next() {
		var r strategy.RevokedSession
		if err := rows.Scan(&r.ID, &r.Expires, &r.RevokedAt); err != nil {
			return nil, fmt.Errorf("read the revoked sessions: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Roster is every strategy's Admin.CreateOperator, Operators and
// DeleteOperator, on the admin's pool of the database that keeps the
// operators; each strategy's Admin embeds it.
type Roster struct {
	DB *pg.LazyConn
}

func (r Roster) CreateOperator(ctx context.Context, email, passwordHash string) (models.Operator, error) {
	pool, _, err := r.DB.Get()
	if err != nil {
		return models.Operator{}, err
	}
	return Create(ctx, pool, email, passwordHash)
}

func (r Roster) Operators(ctx context.Context) ([]models.Operator, error) {
	pool, _, err := r.DB.Get()
	if err != nil {
		return nil, err
	}
	return List(ctx, pool)
}

func (r Roster) DeleteOperator(ctx context.Context, email string) error {
	pool, _, err := r.DB.Get()
	if err != nil {
		return err
	}
	return Delete(ctx, pool, email)
}

// Gate is every strategy's Strategy.OperatorByEmail, RevokeSession and
// RevokedSessions, on the server's pool of the database that keeps the
// operators; each strategy's Server embeds it.
type Gate struct {
	DB *sql.DB
}

func (g Gate) OperatorByEmail(ctx context.Context, email string) (models.Operator, error) {
	return ByEmail(ctx, g.DB, email)
}

func (g Gate) RevokeSession(ctx context.Context, id string, expires time.Time) error {
	return Revoke(ctx, g.DB, id, expires)
}

func (g Gate) RevokedSessions(ctx context.Context, since time.Time) ([]strategy.RevokedSession, error) {
	return Revoked(ctx, g.DB, since)
}
