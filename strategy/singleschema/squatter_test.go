package singleschema

import (
	"context"
	"errors"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/strategytest"
)

// TestSchemaNamedAfterTheAppRoleDoesNotShadow: a schema named after the app
// role, with a subtasks table of its own, comes first on the default
// search_path ("$user", public). The runtime roles' search_path is set to
// public, so the server reads the real tables even when its start-up
// checks (which refuse such a schema) are bypassed.
func TestSchemaNamedAfterTheAppRoleDoesNotShadow(t *testing.T) {
	t.Parallel()
	opts, _, a, _ := twoTenants(t)
	app := pg.QuoteIdent(opts.AppUser)
	strategytest.MustExec(t, pgtest.Admin(t, opts.Database),
		"CREATE SCHEMA "+app,
		"CREATE TABLE "+app+".subtask_counts (account_id bigint, subtasks bigint)",
		"INSERT INTO "+app+".subtask_counts SELECT id, 1000 FROM accounts",
		"GRANT USAGE ON SCHEMA "+app+" TO "+app,
		"GRANT SELECT ON ALL TABLES IN SCHEMA "+app+" TO "+app)
	if _, err := Open(context.Background(), opts); !errors.Is(err, strategy.ErrUnsafeDeployment) {
		t.Errorf("Open with a schema named after the app role: err = %v, want ErrUnsafeDeployment", err)
	}
	s, err := OpenWithoutRoleChecks(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	page, err := s.ListSubtasks(strategytest.TenantCtx(a), 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 3 {
		t.Errorf("tenant-0's total with a squatter's subtask_counts on the default search_path: %d, want its real 3", page.Total)
	}
}
