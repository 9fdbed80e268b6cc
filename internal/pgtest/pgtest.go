// Package pgtest gives each test its own PostgreSQL deployment: uniquely
// named databases and roles, created by the code under test and dropped
// when the test ends, so tests can run in parallel and be re-run.
//
// Tests fail, never skip, when PostgreSQL is unreachable and CI=true.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// Env returns the environment of a fresh deployment of strategyName: a
// unique PGDATABASE and role names, MULTIDB_COUNT 3 and a SECRET_KEY,
// overridden by extra, and the admin connection variables (PGHOST, ...) of
// the test's own environment. Its databases and roles are dropped at
// cleanup.
func Env(t testing.TB, strategyName string, extra map[string]string) map[string]string {
	t.Helper()
	Require(t)
	db := UniqueName("tt")
	m := map[string]string{
		"STRATEGY":       strategyName,
		"PGDATABASE":     db,
		"APP_DB_USER":    db + "_app",
		"READER_DB_USER": db + "_reader",
		"MULTIDB_COUNT":  "3",
		"SECRET_KEY":     "test-secret-key-0123456789",
		"PGSSLMODE":      "disable",
	}
	for _, k := range []string{"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGSSLMODE"} {
		if v := os.Getenv(k); v != "" {
			m[k] = v
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	// The names are fixed now: a test may change its copy of the map later.
	database, app, reader := m["PGDATABASE"], m["APP_DB_USER"], m["READER_DB_USER"]
	t.Cleanup(func() { Drop(t, database, app, reader) })
	return m
}

// Getenv turns an environment map into a getenv function.
func Getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// UniqueName returns prefix_<random hex>, a valid database or role name.
func UniqueName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Admin opens an admin (PGUSER) pool on database, closed at cleanup.
func Admin(t testing.TB, database string) *sql.DB {
	t.Helper()
	return Open(t, "", "", database)
}

// AdminIn opens an admin pool on database whose sessions search schema
// first (then public), closed at cleanup.
func AdminIn(t testing.TB, database, schema string) *sql.DB {
	t.Helper()
	u, err := url.Parse(DSN("", "", database))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	q := u.Query()
	q.Set("search_path", `"`+strings.ReplaceAll(schema, `"`, `""`)+`",public`) // no space: url.Values writes it as "+", which pgx keeps
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatalf("pgtest: open pool on %s (%s): %v", database, schema, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Open opens a pool on database as user (the admin when user is empty),
// closed at cleanup.
func Open(t testing.TB, user, password, database string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", DSN(user, password, database))
	if err != nil {
		t.Fatalf("pgtest: open pool on %s: %v", database, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func adminDSN(database string) string { return DSN("", "", database) }

// DSN is a connection URL to database on the test server as user (the
// admin, PGUSER, when user is empty).
func DSN(user, password, database string) string {
	get := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	if user == "" {
		user, password = get("PGUSER", "postgres"), os.Getenv("PGPASSWORD")
	}
	host := get("PGHOST", "127.0.0.1")
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Path: "/" + database}
	q := url.Values{"sslmode": {get("PGSSLMODE", "disable")}}
	if strings.HasPrefix(host, "/") {
		q.Set("host", host)
		q.Set("port", get("PGPORT", "5432"))
	} else {
		u.Host = net.JoinHostPort(host, get("PGPORT", "5432"))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Require fails the test (CI=true) or skips it (elsewhere) when PostgreSQL
// cannot be reached as the admin role.
func Require(t testing.TB) {
	t.Helper()
	db, err := sql.Open("pgx", adminDSN("postgres"))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err == nil {
		return
	}
	msg := fmt.Sprintf("PostgreSQL is not reachable (%v); start it with `make db`", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Drop removes database, the multidb tenant databases named after it, and
// roles.
func Drop(t testing.TB, database string, roles ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("pgx", adminDSN("postgres"))
	if err != nil {
		t.Errorf("pgtest: drop: %v", err)
		return
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $1 || '_')`, database)
	if err != nil {
		t.Errorf("pgtest: list databases of %s: %v", database, err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Errorf("pgtest: %v", err)
		}
		names = append(names, n)
	}
	rows.Close()
	// Eight at a time, each with a minute of its own: every drop waits for
	// a checkpoint, drops waiting together share one, and a thousand
	// tenant databases take minutes even so.
	db.SetMaxOpenConns(8)
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				drop, cancel := context.WithTimeout(context.Background(), time.Minute)
				if _, err := db.ExecContext(drop, `DROP DATABASE IF EXISTS "`+n+`" WITH (FORCE)`); err != nil {
					t.Errorf("pgtest: drop database %s: %v", n, err)
				}
				cancel()
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if database != "" {
		// Roles a deployment names after its database (the counts owner,
		// and whatever a test made with that prefix).
		rows, err := db.QueryContext(ctx, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1 || '_')`, database)
		if err != nil {
			t.Errorf("pgtest: list roles of %s: %v", database, err)
			return
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				t.Errorf("pgtest: %v", err)
			}
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
		rows.Close()
	}
	for _, r := range roles {
		if _, err := db.ExecContext(ctx, `DROP ROLE IF EXISTS "`+r+`"`); err != nil {
			t.Errorf("pgtest: drop role %s: %v", r, err)
		}
	}
}
