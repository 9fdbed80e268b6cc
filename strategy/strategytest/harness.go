// Package strategytest is the conformance suite every strategy proves
// itself with, in the manner of testing/fstest.TestFS: a strategy's own
// tests call Run with a Harness that opens it, and Run drives it through
// the behaviour package strategy promises (setup that is idempotent and
// refuses databases it did not create, seeded pages that hold every row
// once, tenants kept apart, fail-closed without a tenant, errors for
// unknown tenants and pages, a cross-tenant report that matches the data,
// counts kept by triggers the app role cannot touch or hijack, bulk loads
// that are all or nothing, no leaked row under concurrent load, 503s while
// PostgreSQL restarts, pool figures for monitoring that follow the
// connections, users found by email in their own tenant only, operators
// who belong to no tenant, sign-outs every server sees). It also holds the helpers those tests share. Every
// deployment it makes is uniquely named and dropped when the test ends
// (internal/pgtest).
package strategytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
)

// Harness is what the suite needs to know of one strategy.
type Harness struct {
	// Name is the strategy's name, as in strategy.Options.Strategy.
	Name string
	// Open and OpenAdmin open the strategy's two sides.
	Open      func(ctx context.Context, opts strategy.Options) (strategy.Strategy, error)
	OpenAdmin func(opts strategy.Options) (strategy.Admin, error)
	// TenantDatabase names the database that holds tenant slug's rows.
	TenantDatabase func(opts strategy.Options, slug string) string
	// TenantSchema names the schema that holds the rows of the tenant with
	// id (nil: public).
	TenantSchema func(id models.TenantID) string
	// TenantRole names the role of the tenant with id (nil: tenants have
	// no role of their own).
	TenantRole func(opts strategy.Options, id models.TenantID) string
	// TenantTx are the statements the app role runs first in a
	// transaction to work as tenant a (nil: none).
	TenantTx func(opts strategy.Options, a models.Account) []string
	// Databases lists every database Setup creates.
	Databases func(opts strategy.Options) []string
	// Migrations are the strategy's migration files: of the tenant tables
	// when it has two sets.
	Migrations fs.FS
	// SharedMigrations, when the strategy has them, are those of its
	// database's shared tables (multischema's public schema), which Setup
	// reports under the database's own name.
	SharedMigrations fs.FS
	// ThroughPgBouncer: the strategy is also load tested behind PgBouncer
	// in transaction pooling mode.
	ThroughPgBouncer bool
	// ResetDropsTables: Admin.Reset drops the tenants' tables (and their
	// sequences) rather than emptying them, so ids start again from 1.
	ResetDropsTables bool
	// RememberTotal makes s take total as tenant slug's last seen total
	// (which chooses the end a page is read from), or forget it when total
	// is negative; nil when the strategy remembers none.
	RememberTotal func(s strategy.Strategy, slug string, total int64)
	// TenantsOnIdleConnections reads the tenant setting each of n idle
	// connections of s's app pool would carry into its next transaction;
	// nil when the strategy keeps no tenant in a setting.
	TenantsOnIdleConnections func(ctx context.Context, s strategy.Strategy, n int) ([]string, error)
	// CountTriggerSite says where the count triggers of tenant a run when
	// that is not the database the strategy connects to (nil: it is): on
	// Citus, the worker that holds the tenant's shard of subtasks, which
	// the app role may log in to as the coordinator does. The suite
	// replays the attack on the count triggers there.
	CountTriggerSite func(t testing.TB, opts strategy.Options, a models.Account) TriggerSite
}

// TriggerSite is a database where count triggers run, other than the
// strategy's own (Harness.CountTriggerSite).
type TriggerSite struct {
	// Open opens a pool there as user (the admin when empty), closed when
	// the test ends.
	Open func(t testing.TB, user string) *sql.DB
	// Begin are the statements a transaction there runs first to create
	// a function of its own (the attacker's) and to alter a role (the
	// test's clean-up): on a Citus worker, turning off the propagation of
	// DDL, without which the worker refuses both ("operation is not
	// allowed on this node"). Any role may turn it off.
	Begin []string
}

// CheckNoTenantLeftOnConnections fails the test when a connection of s's
// app pool still carries a tenant setting after its transaction (nothing
// to check when the harness cannot read them).
func CheckNoTenantLeftOnConnections(t testing.TB, h Harness, s strategy.Strategy, n int) {
	t.Helper()
	if h.TenantsOnIdleConnections == nil {
		return
	}
	settings, err := h.TenantsOnIdleConnections(context.Background(), s, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range settings {
		if v != "" {
			t.Errorf("app connection %d of %d still has a tenant (%q) after its transaction", i+1, len(settings), v)
		}
	}
}

// TenantDB opens an admin pool on the database of tenant slug where
// unqualified table names are that tenant's tables (its schema first on the
// search_path, in multischema), closed when the test ends. A tenant not
// created yet is taken to get the id its seed would give it (tenant-i,
// i+1).
func (h Harness) TenantDB(t testing.TB, opts strategy.Options, slug string) *sql.DB {
	t.Helper()
	database := h.TenantDatabase(opts, slug)
	if h.TenantSchema == nil {
		return pgtest.Admin(t, database)
	}
	var id int64
	err := pgtest.Admin(t, database).QueryRow(`SELECT id FROM public.accounts WHERE slug = $1`, slug).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		i, _ := strategy.ParseSlug(slug)
		id = int64(i) + 1
	} else if err != nil {
		t.Fatal(err)
	}
	return pgtest.AdminIn(t, database, h.TenantSchema(models.TenantID(id)))
}

// Options returns Options for a fresh deployment of strategyName that is
// dropped when the test ends: 3 tenant databases for multidb, a budget of
// 4 connections. (configs imports strategy, so the tests build Options
// themselves.)
func Options(t testing.TB, strategyName string) strategy.Options {
	t.Helper()
	env := pgtest.Env(t, strategyName, nil)
	get := func(k, def string) string {
		if v := env[k]; v != "" {
			return v
		}
		return def
	}
	port, err := strconv.Atoi(get("PGPORT", "5432"))
	if err != nil {
		t.Fatalf("PGPORT: %v", err)
	}
	return strategy.Options{
		Strategy:      strategyName,
		Host:          get("PGHOST", "127.0.0.1"),
		Port:          port,
		SSLMode:       get("PGSSLMODE", "disable"),
		AdminUser:     get("PGUSER", "postgres"),
		AdminPassword: env["PGPASSWORD"],
		Database:      env["PGDATABASE"],
		AppUser:       env["APP_DB_USER"],
		ReaderUser:    env["READER_DB_USER"],
		TenantCount:   3,
		MaxConns:      4,
	}
}

// Deploy sets up a fresh deployment and opens both sides of it; both are
// closed, and the deployment dropped, when the test ends.
func Deploy(t testing.TB, h Harness) (strategy.Options, strategy.Admin, strategy.Strategy) {
	t.Helper()
	opts := Options(t, h.Name)
	admin := OpenAdmin(t, h, opts)
	if _, err := admin.Setup(context.Background(), nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	s, err := h.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return opts, admin, s
}

// OpenAdmin opens the admin side for opts, closed when the test ends.
func OpenAdmin(t testing.TB, h Harness, opts strategy.Options) strategy.Admin {
	t.Helper()
	admin, err := h.OpenAdmin(opts)
	if err != nil {
		t.Fatalf("OpenAdmin: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// AddTenant creates slug with one project, one task and n subtasks named
// "<slug> subtask <i>", and returns the account as the server sees it.
func AddTenant(t testing.TB, admin strategy.Admin, s strategy.Strategy, slug string, n int) models.Account {
	t.Helper()
	ctx := context.Background()
	err := admin.CreateTenant(ctx, models.Account{Slug: slug, Name: "Account " + slug}, true, func(tx *gorm.DB) error {
		p := models.Project{Name: slug + " project"}
		if err := tx.Create(&p).Error; err != nil {
			return err
		}
		task := models.Task{ProjectID: p.ID, Name: slug + " task"}
		if err := tx.Create(&task).Error; err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		subs := make([]models.Subtask, n)
		for i := range subs {
			subs[i] = models.Subtask{TaskID: task.ID, Name: fmt.Sprintf("%s subtask %d", slug, i)}
		}
		return tx.Create(&subs).Error
	})
	if err != nil {
		t.Fatalf("CreateTenant(%s): %v", slug, err)
	}
	acct, err := s.TenantBySlug(ctx, slug)
	if err != nil {
		t.Fatalf("TenantBySlug(%s): %v", slug, err)
	}
	return acct
}

// TenantCtx is a context carrying tenant a.
func TenantCtx(a models.Account) context.Context {
	return models.NewContextWithTenant(context.Background(), a)
}

// MustExec runs each statement on db, failing the test on an error.
func MustExec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Int64s runs query on db and returns its one int64 column.
func Int64s(t testing.TB, db *sql.DB, query string, args ...any) []int64 {
	t.Helper()
	return Column[int64](t, db, query, args...)
}

// Column runs query on db and returns its one column, each value scanned
// into a T.
func Column[T any](t testing.TB, db *sql.DB, query string, args ...any) []T {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// LatestVersion is the version of the newest migration file in fsys.
func LatestVersion(t testing.TB, fsys fs.FS) int64 {
	t.Helper()
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v, %d files", err, len(files))
	}
	v, err := strconv.ParseInt(strings.SplitN(files[len(files)-1], "_", 2)[0], 10, 64)
	if err != nil {
		t.Fatalf("migration %s: %v", files[len(files)-1], err)
	}
	return v
}
