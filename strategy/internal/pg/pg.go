// Package pg is the PostgreSQL plumbing the strategies share: pools and
// gorm roots, error classification (what is a 503), quoting, roles,
// databases and exact grants, the goose migration runner, the COPY loader,
// and first-come-first-served turns on a pool.
package pg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"tenancy/strategy"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// newGorm returns a gorm root over pool with the strategy's plugin (the
// tenant scope, or multidb's column handling). Callbacks and the schema
// cache live on the root, so each strategy keeps one root per role and swaps
// only the connection pool per tenant.
func NewGorm(pool gorm.ConnPool, log *slog.Logger, plugin gorm.Plugin) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: pool}), &gorm.Config{
		Logger: slowQueries{Interface: logger.NewSlogLogger(log, logger.Config{
			SlowThreshold: slowQuery, LogLevel: logger.Warn, IgnoreRecordNotFoundError: true,
			ParameterizedQueries: true, // tenant data stays out of the logs
		})},
		SkipDefaultTransaction: true, // every unit of tenant work is already one explicit transaction
		DisableAutomaticPing:   true, // pools are opened lazily; Ping reports reachability
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open gorm: %w", err)
	}
	if err := db.Use(plugin); err != nil {
		return nil, fmt.Errorf("register %s: %w", plugin.Name(), err)
	}
	return db, nil
}

// slowQuery is how long a statement runs before it is logged.
const slowQuery = 500 * time.Millisecond

// slowQueries logs slow statements but not failed ones: every error is
// returned to, and reported by, the caller, and a failed multi-row INSERT
// would otherwise print thousands of placeholders. It passes on only what
// will be logged: gorm's slog logger renders every statement's SQL with its
// values before deciding not to log it, which cost a few per cent of the
// server's CPU under load.
type slowQueries struct {
	logger.Interface
	all bool // LogMode Info or more (db.Debug()): every statement
}

func (l slowQueries) LogMode(level logger.LogLevel) logger.Interface {
	return slowQueries{Interface: l.Interface.LogMode(level), all: level >= logger.Info}
}

func (l slowQueries) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if err == nil && (l.all || time.Since(begin) > slowQuery) {
		l.Interface.Trace(ctx, begin, fc, nil)
	}
}

// openPool opens a database/sql pool; it does not connect until first use.
func OpenPool(dsn string, maxOpen, maxIdle int) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	setPoolLimits(db, maxOpen, maxIdle)
	return db, nil
}

// setPoolLimits gives a pool its size, and its connections their idle
// time and lifetime.
func setPoolLimits(db *sql.DB, maxOpen, maxIdle int) {
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxIdle)
	db.SetConnMaxIdleTime(time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
}

// classify marks errors that mean "the database is not reachable right now"
// with ErrUnavailable, so the web layer can answer 503 instead of 500, and
// a privilege the role lacks with ErrMissingPrivilege, a deployment fault
// the web layer answers 500 and logs as one.
func Classify(err error) error {
	if err == nil || errors.Is(err, strategy.ErrUnavailable) || errors.Is(err, strategy.ErrMissingPrivilege) {
		return err
	}
	if IsMissingPrivilege(err) {
		return fmt.Errorf("%w: %w", strategy.ErrMissingPrivilege, err)
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", strategy.ErrUnavailable, err)
	}
	return err
}

// IsMissingPrivilege reports whether err is PostgreSQL refusing the role a
// privilege on an object (42501), not a row for row-level security (the
// same code).
func IsMissingPrivilege(err error) bool {
	return IsPgError(err, "42501") && !IsRLSViolation(err)
}

func isUnavailable(err error) bool {
	// A request that ran out of time, or whose client left, is answered
	// "unavailable" (if anyone still listens), not "internal error".
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	// The server's own answer decides first: a login refused (class 28:
	// wrong password, no such role) is a misconfiguration that retrying
	// will not fix, even though pgx reports it as a failure to connect.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "55000": // database not accepting connections
			return true
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08": // connection exceptions
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutting down, crash, starting up
			return true
		case pgErr.Code == "3D000": // database does not exist
			return true
		case pgErr.Code == "53300": // too many connections
			return true
		case pgErr.Code == "55P03": // lock_not_available: lock_timeout, behind a migration or a LOCK TABLE
			return true
		case pgErr.Code == "40P01", pgErr.Code == "40001":
			// A deadlock or a serialization failure with concurrent work
			// (a read against a DROP or ALTER in progress): the same
			// request succeeds, or fails for what is left, when tried again.
			return true
		case ShardReplaced(err):
			// Citus, a statement racing a shard split: see ShardReplaced.
			return true
		}
		return false
	}
	// Otherwise nothing is done before a connection exists, so a failure to
	// make one (refused, reset, timed out) means "not reachable now".
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// tenantDatabaseUnreachable reports whether err is a failure to connect to
// a database that is missing (3D000) or does not accept connections
// (55000, ALTER DATABASE ... ALLOW_CONNECTIONS false) on a server that
// answers: a fault of that database alone.
func TenantDatabaseUnreachable(err error) bool {
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) && (IsPgError(err, "3D000") || IsPgError(err, "55000"))
}

// IsPgError reports whether err carries the PostgreSQL error code code
// (e.g. "23503" foreign-key violation, "42501" insufficient privilege).
func IsPgError(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// quoteIdent quotes a PostgreSQL identifier (database and role names come
// from configuration and may contain '-').
func QuoteIdent(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// quoteLiteral quotes a string literal for the few statements that cannot
// take bind parameters (CREATE ROLE ... PASSWORD). PostgreSQL's default
// standard_conforming_strings=on makes doubling quotes sufficient.
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// withTimeout bounds administrative statements that could otherwise hang.
func WithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*time.Minute)
}

// withPgxConn runs fn on a connection of pool, as pgx sees it.
func WithPgxConn(ctx context.Context, pool *sql.DB, fn func(*pgx.Conn) error) error {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error { return fn(driverConn.(*stdlib.Conn).Conn()) })
}

// withMaintenance runs fn on a short-lived admin connection to the
// maintenance database, where roles and databases are created.
func WithMaintenance(ctx context.Context, opts strategy.Options, fn func(*sql.DB) error) error {
	m, err := OpenPool(opts.AdminDSN(MaintenanceDatabase), 1, 1)
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, cancel := WithTimeout(ctx)
	defer cancel()
	if err := m.PingContext(ctx); err != nil {
		err = Classify(fmt.Errorf("connect to PostgreSQL at %s:%d as %q: %w", opts.Host, opts.Port, opts.AdminUser, err))
		if errors.Is(err, strategy.ErrUnavailable) {
			err = fmt.Errorf("%w (is the server running? `make db` starts it)", err)
		}
		return err
	}
	return fn(m)
}

// inTx runs fn in a transaction that is always rolled back.
func InTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// isRLSViolation reports whether err is PostgreSQL refusing a row for
// row-level security (42501 is also the code of a missing privilege).
func IsRLSViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.Contains(pgErr.Message, "row-level security")
}

// MaintenanceDatabase is where CREATE DATABASE and CREATE ROLE run.
const MaintenanceDatabase = "postgres"

// WithSearchPath returns dsn with search_path set to schema, then public,
// for every session of the pool opened on it.
func WithSearchPath(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", QuoteIdent(schema)+",public") // no space: url.Values writes it as "+", which pgx keeps
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// PingAll pings each of a server's pools on database, and says which
// database did not answer.
func PingAll(ctx context.Context, database string, pools []*sql.DB) error {
	for _, p := range pools {
		if err := p.PingContext(ctx); err != nil {
			return Classify(fmt.Errorf("ping %s: %w", database, err))
		}
	}
	return nil
}

// CloseAll closes each of a server's pools.
func CloseAll(pools []*sql.DB) error {
	var errs []error
	for _, p := range pools {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
