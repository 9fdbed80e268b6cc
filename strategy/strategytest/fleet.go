package strategytest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// SchemaChange ends the name of the migration that adds subtasks.priority,
// in every strategy: the change a deployment rolls out over its fleet
// here, and the one compare times.
const SchemaChange = "_subtask_priority.sql"

// testMigrationFailsMidFleet is the talk's case: a migration that fails on
// one tenant in the middle of the fleet (here the priority migration adds
// subtasks.priority, and tenant-1 already has such a column, made by hand),
// with a server running the new code throughout. The run stops at the
// failure; the report says which tenants were migrated, which failed and
// which were not attempted; tenant-1 is left whole at its old version; the
// tenants already migrated are served, those behind get
// ErrTenantUpgrading (503), never another error. --continue migrates the
// tenants after it; once the data is fixed, a re-run finishes tenant-1. In
// singleschema every tenant shares the one schema, so the one failure
// holds every tenant back until it is fixed.
func testMigrationFailsMidFleet(t *testing.T, h Harness) {
	ctx := context.Background()
	old := Options(t, h.Name)
	// Deployed by the previous build, which had not the priority
	// migration nor any after it.
	old.HoldBackMigrations = pg.CountFrom(h.Migrations, SchemaChange)
	if old.HoldBackMigrations == 0 {
		t.Fatalf("no migration ends with %s", SchemaChange)
	}
	oldAdmin := OpenAdmin(t, h, old)
	if _, err := oldAdmin.Setup(ctx, nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	oldServer, err := h.Open(ctx, old)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer oldServer.Close()
	slugs := []string{"tenant-0", "tenant-1", "tenant-2"}
	for _, slug := range slugs {
		AddTenant(t, oldAdmin, oldServer, slug, 2)
	}
	fleet := h.TenantSchema != nil || h.TenantDatabase(old, "tenant-0") != h.TenantDatabase(old, "tenant-1")
	hotfixed := h.TenantDB(t, old, "tenant-1")
	MustExec(t, hotfixed, "ALTER TABLE subtasks ADD COLUMN priority smallint")

	cur := old
	cur.HoldBackMigrations = 0 // the new build
	admin := OpenAdmin(t, h, cur)
	s, err := h.Open(ctx, cur)
	if err != nil {
		t.Fatalf("Open with tenants behind: %v (a tenant behind must not stop the server)", err)
	}
	defer s.Close()

	migrate := func(step string, o strategy.MigrateOptions, wantErr bool, want map[string]string) {
		t.Helper()
		var out strings.Builder
		rep, err := admin.Migrate(ctx, &out, o)
		if (err != nil) != wantErr {
			t.Fatalf("%s: Migrate err = %v, want an error: %v\n%s", step, err, wantErr, out.String())
		}
		got := map[string]string{}
		for _, d := range rep.Databases {
			if d.Tenant != "" || !fleet {
				got[d.Tenant] = d.Status()
			}
		}
		for who, status := range want {
			if got[who] != status {
				t.Errorf("%s: %q is %q in the report, want %q (report %v)\n%s", step, who, got[who], status, got, out.String())
			}
		}
	}
	// served says whether each tenant is served (true) or told it is being
	// upgraded (false); any other error fails the test.
	served := func(step string, want map[string]bool) {
		t.Helper()
		for slug, ok := range want {
			acct, err := s.TenantBySlug(ctx, slug)
			if err == nil {
				var page strategy.SubtaskPage
				page, err = s.ListSubtasks(TenantCtx(acct), 1, 10)
				if err == nil && page.Total != 2 {
					t.Errorf("%s: %s served %d subtasks, want its 2", step, slug, page.Total)
				}
			}
			switch {
			case ok && err != nil:
				t.Errorf("%s: %s: %v, want it served", step, slug, err)
			case !ok && !errors.Is(err, strategy.ErrTenantUpgrading):
				t.Errorf("%s: %s: err = %v, want ErrTenantUpgrading (503, being upgraded)", step, slug, err)
			}
		}
	}

	if fleet {
		migrate("first run", strategy.MigrateOptions{Jobs: 1}, true,
			map[string]string{"tenant-0": "applied", "tenant-1": "failed", "tenant-2": "not attempted"})
		served("after the failed run", map[string]bool{"tenant-0": true, "tenant-1": false, "tenant-2": false})
		migrate("with --continue", strategy.MigrateOptions{Jobs: 1, Continue: true}, true,
			map[string]string{"tenant-0": "current", "tenant-1": "failed", "tenant-2": "applied"})
		served("after --continue", map[string]bool{"tenant-0": true, "tenant-1": false, "tenant-2": true})
	} else {
		migrate("first run", strategy.MigrateOptions{}, true, map[string]string{"": "failed"})
		served("after the failed run", map[string]bool{"tenant-0": false, "tenant-1": false, "tenant-2": false})
	}
	// tenant-1 is whole at the old version: its migration was one
	// transaction, so nothing of it stayed.
	var version int64
	if err := hotfixed.QueryRow(`SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	// Versions may have gaps: the old one is that of the newest file the
	// previous build had.
	if before := LatestVersion(t, pg.WithoutNewest(h.Migrations, old.HoldBackMigrations)); version != before {
		t.Errorf("tenant-1 after its failed migration is at version %d, want %d (the old one)", version, before)
	}

	MustExec(t, hotfixed, "ALTER TABLE subtasks DROP COLUMN priority")
	if fleet {
		migrate("after fixing tenant-1", strategy.MigrateOptions{}, false,
			map[string]string{"tenant-0": "current", "tenant-1": "applied", "tenant-2": "current"})
	} else {
		migrate("after fixing the schema", strategy.MigrateOptions{}, false, map[string]string{"": "applied"})
	}
	served("after the re-run", map[string]bool{"tenant-0": true, "tenant-1": true, "tenant-2": true})
}
