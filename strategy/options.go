package strategy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
)

// Options says where PostgreSQL is and which roles and databases to use.
// Package configs fills it from the environment.
type Options struct {
	Strategy string

	Host     string // host name, IP address, or Unix socket directory
	Port     int
	SSLMode  string
	TimeZone string

	// AdminUser owns the tables and runs migrations and seeding.
	AdminUser     string
	AdminPassword string
	// Database is PGDATABASE: the singleschema database, or the name multidb
	// tenant databases are derived from.
	Database string

	// AppUser is the role the web server connects as; it must not be a
	// superuser, have BYPASSRLS, or own (or be a member of an owner of) a
	// tenanted table.
	AppUser     string
	AppPassword string
	// ReaderUser serves the singleschema all-tenants view, read-only.
	ReaderUser     string
	ReaderPassword string

	// TenantCount is MULTIDB_COUNT: the tenants (tenant-0 ..
	// tenant-(TenantCount-1)) multidb's Setup lists in the tenant
	// directory when they are missing, and seed's default; after setup
	// the directory says which tenants there are.
	TenantCount int
	// MaxConns is the connection budget of the server's pools: how many
	// connections work at once (singleschema: also how many it holds).
	MaxConns int
	// TenantConns is how many connections a multidb server holds open
	// across its tenant databases, idle ones included; when zero, it is
	// derived from the server's max_connections (see tenantConnsFor).
	// Tenants beyond it take turns, paying for a new connection each time.
	TenantConns int
	// Servers is MULTIDB_SERVERS: how many multidb servers share the
	// cluster; when TenantConns is zero each takes its share of what the
	// server allows (1 when zero).
	Servers int
	// QueryExecMode is pgx's default_query_exec_mode; empty keeps pgx's
	// default (named statements cached per connection). Behind PgBouncer
	// older than 1.21 in transaction mode, which has no prepared
	// statements, use "exec".
	QueryExecMode string

	// HoldBackMigrations leaves the newest N migrations of the tenant
	// tables pending in Setup and Migrate (0: none). compare holds back
	// the priority migration and those after it, to time that one, a real
	// schema change, apart from setup.
	HoldBackMigrations int

	// CoordinatorReads sends every singleschema page read on Citus to the
	// coordinator. Unset, a tenant's page is read on the worker that holds
	// its shards when the server can reach that worker (CITUS_WORKER_READS).
	CoordinatorReads bool

	Logger *slog.Logger
}

// Validate checks what every strategy needs of o; each strategy checks
// its own fields too (multidb: TenantCount), and package strategies the
// name.
func (o Options) Validate() error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"host", o.Host}, {"admin user", o.AdminUser}, {"database", o.Database},
		{"app user", o.AppUser}, {"reader user", o.ReaderUser},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty", f.name))
		}
	}
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", o.Port))
	}
	switch o.QueryExecMode {
	case "", "cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol":
	default:
		errs = append(errs, fmt.Errorf("query exec mode %q: want cache_statement, cache_describe, describe_exec, exec or simple_protocol", o.QueryExecMode))
	}
	if o.AppUser != "" && o.AppUser == o.AdminUser {
		errs = append(errs, fmt.Errorf("app user %q is the admin user: the server must not connect as the owner of the tables", o.AppUser))
	}
	return errors.Join(errs...)
}

// Log is the logger, or one that discards everything.
func (o Options) Log() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Throwaway returns o for a fresh deployment of its own: databases named
// <Database>_<tag>_<random> and roles after them, without passwords (the
// admin creates them). For benchmarks and comparisons, which drop it with
// Admin.Destroy.
func (o Options) Throwaway(tag string) Options {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	o.Database = o.Database + "_" + tag + "_" + hex.EncodeToString(b)
	o.AppUser, o.ReaderUser = o.Database+"_app", o.Database+"_reader"
	o.AppPassword, o.ReaderPassword = "", ""
	return o
}

// Budget is MaxConns, or DefaultMaxConns when it is not set.
func (o Options) Budget() int {
	if o.MaxConns > 0 {
		return o.MaxConns
	}
	return DefaultMaxConns()
}

// DefaultMaxConns is twice the cores of this machine, at least 4: the
// rule of thumb for a PostgreSQL server's useful concurrency (its cores,
// plus as many again waiting on I/O or the network), for a server on this
// machine. On two cores, 4 connections served the singleschema list page
// 1,751 req/s and 16 connections about 1,400 (more backends than cores to
// run them, switching among themselves).
func DefaultMaxConns() int {
	return max(4, 2*runtime.NumCPU())
}

// DSN builds a pgx connection URL for one role and database. Query values
// are escaped by net/url, so names and passwords need no quoting.
func (o Options) DSN(user, password, database string) string {
	u := url.URL{Scheme: "postgres", Path: "/" + database}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	q := url.Values{}
	if strings.HasPrefix(o.Host, "/") {
		q.Set("host", o.Host)
		q.Set("port", strconv.Itoa(o.Port))
	} else {
		u.Host = net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	}
	if o.SSLMode != "" {
		q.Set("sslmode", o.SSLMode)
	}
	if o.TimeZone != "" {
		q.Set("timezone", o.TimeZone)
	}
	if o.QueryExecMode != "" {
		q.Set("default_query_exec_mode", o.QueryExecMode)
	}
	q.Set("application_name", "tenancy")
	u.RawQuery = q.Encode()
	return u.String()
}

// AdminDSN is the connection URL of the admin role on database.
func (o Options) AdminDSN(database string) string {
	return o.DSN(o.AdminUser, o.AdminPassword, database)
}

// AppDSN is the connection URL of the app role on database.
func (o Options) AppDSN(database string) string {
	return o.DSN(o.AppUser, o.AppPassword, database)
}

// ReaderDSN is the connection URL of the all-tenants reader on database.
func (o Options) ReaderDSN(database string) string {
	return o.DSN(o.ReaderUser, o.ReaderPassword, database)
}

// CountsOwner is the role that owns the triggers keeping the subtask
// counts: NOLOGIN, with rights on subtask_counts only. The triggers run
// with its rights, so a flaw in them reaches no further than the counts.
func (o Options) CountsOwner() string { return o.Database + "_counter" }

// TenantDatabase is the multidb database setup makes for the sample
// tenant i, tenant-i (<Database>_<slug>, as for every multidb tenant on
// the deployment's own server).
func (o Options) TenantDatabase(i int) string {
	return fmt.Sprintf("%s_tenant-%d", o.Database, i)
}
