package strategy

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
)

// testOptions returns Options for a fresh deployment that is dropped when
// the test ends. (configs imports this package, so tests build Options
// themselves.)
func testOptions(t *testing.T, strategyName string) Options {
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
	return Options{
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

// deploy sets up a deployment and opens both sides of it.
func deploy(t *testing.T, strategyName string) (Options, Admin, Strategy) {
	t.Helper()
	opts := testOptions(t, strategyName)
	admin, err := OpenAdmin(opts)
	if err != nil {
		t.Fatalf("OpenAdmin: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Setup(context.Background(), nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return opts, admin, s
}

// addTenant creates slug with one project, one task and n subtasks named
// "<slug> subtask <i>", and returns the account as the server sees it.
func addTenant(t *testing.T, admin Admin, s Strategy, slug string, n int) models.Account {
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

func tenantCtx(a models.Account) context.Context {
	return models.NewContextWithTenant(context.Background(), a)
}

// latestVersion is the version of the newest migration file of a strategy.
func latestVersion(t *testing.T, strategyName string) int64 {
	t.Helper()
	fsys, err := Migrations(strategyName)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations of %s: %v, %d files", strategyName, err, len(files))
	}
	v, err := strconv.ParseInt(strings.SplitN(files[len(files)-1], "_", 2)[0], 10, 64)
	if err != nil {
		t.Fatalf("migration %s: %v", files[len(files)-1], err)
	}
	return v
}

// int64s runs query on db and returns its one int64 column.
func int64s(t *testing.T, db *sql.DB, query string) []int64 {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
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
