package strategy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
)

// TestSetupAdoptsOnlyItsOwnDatabases: a database created beforehand by
// another role may hold that role's schemas and objects (a schema named
// after the app role comes first on its default search_path), and its owner
// can change it at will; setup refuses it rather than migrate into it.
func TestSetupAdoptsOnlyItsOwnDatabases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		strategy string
		database func(Options) string
	}{
		{SingleSchema, func(o Options) string { return o.Database }},
		{MultiDB, func(o Options) string { return o.Database }},
		{MultiDB, func(o Options) string { return o.Database + "_tenant-template" }},
		{MultiDB, func(o Options) string { return o.TenantDatabase(1) }},
	}
	for _, tt := range tests {
		t.Run(tt.strategy+"/"+tt.database(Options{Database: "db"}), func(t *testing.T) {
			t.Parallel()
			opts := testOptions(t, tt.strategy)
			squatter, database := opts.Database+"_squatter", tt.database(opts)
			mustExec(t, pgtest.Admin(t, "postgres"),
				"CREATE ROLE "+quoteIdent(squatter)+" LOGIN CREATEDB",
				"CREATE DATABASE "+quoteIdent(database)+" OWNER "+quoteIdent(squatter))
			admin, err := OpenAdmin(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			_, err = admin.Setup(context.Background(), nil)
			if !errors.Is(err, ErrUnsafeDeployment) || !strings.Contains(err.Error(), squatter) {
				t.Errorf("Setup with %s created by %s beforehand: err = %v, want ErrUnsafeDeployment naming the owner", database, squatter, err)
			}
			var tables int
			if err := pgtest.Admin(t, database).QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
				t.Fatal(err)
			}
			if tables != 0 {
				t.Errorf("Setup migrated into %s, which it did not create: %d tables", database, tables)
			}
		})
	}
}

// TestSchemaNamedAfterTheAppRoleDoesNotShadow: a schema named after the app
// role, with a subtasks table of its own, comes first on the default
// search_path ("$user", public). The runtime roles' search_path is set to
// public, so the server reads the real tables even when its start-up
// checks (which refuse such a schema) are bypassed.
func TestSchemaNamedAfterTheAppRoleDoesNotShadow(t *testing.T) {
	t.Parallel()
	opts, _, a, _ := twoTenants(t)
	app := quoteIdent(opts.AppUser)
	mustExec(t, pgtest.Admin(t, opts.Database),
		"CREATE SCHEMA "+app,
		"CREATE TABLE "+app+".subtask_counts (account_id bigint, subtasks bigint)",
		"INSERT INTO "+app+".subtask_counts SELECT id, 1000 FROM accounts",
		"GRANT USAGE ON SCHEMA "+app+" TO "+app,
		"GRANT SELECT ON ALL TABLES IN SCHEMA "+app+" TO "+app)
	if _, err := Open(context.Background(), opts); !errors.Is(err, ErrUnsafeDeployment) {
		t.Errorf("Open with a schema named after the app role: err = %v, want ErrUnsafeDeployment", err)
	}
	s, err := OpenWithoutRoleChecks(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	page, err := s.ListSubtasks(tenantCtx(a), 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 3 {
		t.Errorf("tenant-0's total with a squatter's subtask_counts on the default search_path: %d, want its real 3", page.Total)
	}
}
