package pg

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// TestMigrateIsAtomic: the migrations pending in a database or schema are
// applied together or not at all. When the second of two pending files
// fails, the first is undone with it, the version stays where it was and
// the report says nothing was applied; once the file is fixed, a re-run
// applies both. goose's version table is written as goose writes it, so
// goose itself sees the result as current.
func TestMigrateIsAtomic(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	ctx := context.Background()
	name := pgtest.UniqueName("tt_migrate")
	admin := pgtest.Admin(t, "postgres")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgtest.Drop(t, name) })
	db := pgtest.Admin(t, name)
	first := "-- +goose Up\nCREATE TABLE things (id int PRIMARY KEY, n int NOT NULL);\nINSERT INTO things VALUES (1, -1);\n-- +goose Down\nDROP TABLE things;\n"
	files := fstest.MapFS{"00001_things.sql": {Data: []byte(first)}}
	for _, tc := range []struct {
		name, schema string
	}{
		{"a database", ""},
		{"a schema", "tenant_7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.schema != "" {
				if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+tc.schema); err != nil {
					t.Fatal(err)
				}
			}
			var rep strategy.DatabaseReport
			if err := Migrate(ctx, db, files, tc.schema, &rep); err != nil || rep.To != 1 {
				t.Fatalf("first migration: err = %v, version %d", err, rep.To)
			}
			// 00002 succeeds on its own; 00003 fails on the row 00001 wrote.
			files := fstest.MapFS{
				"00001_things.sql": files["00001_things.sql"],
				"00002_more.sql":   {Data: []byte("-- +goose Up\nCREATE TABLE more_things (id int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n-- +goose StatementEnd\n-- +goose Down\nDROP TABLE more_things;\n")},
				"00003_check.sql":  {Data: []byte("-- +goose Up\nALTER TABLE things ADD CONSTRAINT positive CHECK (n > 0);\n-- +goose Down\n")},
			}
			rep = strategy.DatabaseReport{}
			err := Migrate(ctx, db, files, tc.schema, &rep)
			if err == nil || !strings.Contains(err.Error(), "00003_check.sql") {
				t.Fatalf("Migrate with a failing third file: err = %v, want one naming 00003_check.sql", err)
			}
			if rep.From != 1 || rep.To != 1 || len(rep.Applied) != 0 {
				t.Errorf("report after the failure = %+v, want version 1 to 1 and nothing applied", rep)
			}
			table := "more_things"
			if tc.schema != "" {
				table = tc.schema + "." + table
			}
			var exists bool
			if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || exists {
				t.Errorf("%s exists = %v (err %v) after the run failed; want the second file undone with the third", table, exists, err)
			}
			if current, err := AtEveryVersion(ctx, db, files, schemaOr(tc.schema), "goose_db_version"); err != nil || current != -1 {
				t.Errorf("AtEveryVersion after the failure = %d, %v; want -1 (pending)", current, err)
			}
			versionTable := "goose_db_version"
			if tc.schema != "" {
				versionTable = tc.schema + "." + versionTable
			}
			if _, err := db.ExecContext(ctx, "UPDATE "+strings.TrimSuffix(versionTable, "goose_db_version")+"things SET n = 1"); err != nil {
				t.Fatal(err)
			}
			rep = strategy.DatabaseReport{}
			if err := Migrate(ctx, db, files, tc.schema, &rep); err != nil || rep.From != 1 || rep.To != 3 || len(rep.Applied) != 2 {
				t.Fatalf("re-run after fixing the data: err = %v, report %+v; want 1 -> 3 with two files applied", err, rep)
			}
			if current, err := AtEveryVersion(ctx, db, files, schemaOr(tc.schema), "goose_db_version"); err != nil || current != 3 {
				t.Errorf("AtEveryVersion after the re-run = %d, %v; want 3", current, err)
			}
			p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithDisableGlobalRegistry(true), goose.WithTableName(versionTable))
			if err != nil {
				t.Fatal(err)
			}
			if pending, err := p.HasPending(ctx); err != nil || pending {
				t.Errorf("goose: pending = %v, %v after the re-run; want goose to read the version table as current", pending, err)
			}
			rep = strategy.DatabaseReport{}
			if err := Migrate(ctx, db, files, tc.schema, &rep); err != nil || rep.To != 3 || len(rep.Applied) != 0 {
				t.Errorf("a third run: err = %v, report %+v; want nothing to do at version 3", err, rep)
			}
		})
	}
}

func schemaOr(schema string) string {
	if schema == "" {
		return "public"
	}
	return schema
}

// TestMigrateRefusesWhatItCannotRunInOneTransaction: a file goose would
// run outside a transaction is refused, naming the file, and nothing of
// the run is applied.
func TestMigrateRefusesWhatItCannotRunInOneTransaction(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"no transaction", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (x);\n", "NO TRANSACTION"},
		{"environment substitution", "-- +goose ENVSUB ON\n-- +goose Up\nSELECT 1;\n", "ENVSUB"},
		{"no up section", "SELECT 1;\n", "no \"-- +goose Up\" section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := upSection(fstest.MapFS{"00002_x.sql": {Data: []byte(tt.text)}}, "00002_x.sql")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "00002_x.sql") {
				t.Errorf("upSection: err = %v, want one naming the file and %q", err, tt.want)
			}
		})
	}
}
