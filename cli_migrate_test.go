package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// TestMigrateCommand: `tenancy migrate` reports every tenant, as a table
// and as JSON, in every strategy; in multidb, a tenant database that
// cannot be migrated stops the run there (exit 1, the tenants after it not
// attempted) unless --continue is given, and the JSON says so per tenant.
func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	type result struct {
		Tenant, Status string
		Error          string `json:"error"`
		Skipped        string `json:"not_attempted_because"`
	}
	migrateJSON := func(t *testing.T, env map[string]string, args ...string) (map[string]result, error) {
		t.Helper()
		var out, progress bytes.Buffer
		err := run(context.Background(), append([]string{"migrate", "--json"}, args...), pgtest.Getenv(env), &out, &progress)
		var rep struct {
			Counts  map[string]int `json:"counts"`
			Results []result       `json:"results"`
		}
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			t.Fatalf("tenancy migrate --json %v printed something else than JSON (%v):\n%s\nstderr:\n%s", args, jerr, out.String(), progress.String())
		}
		byTenant := map[string]result{}
		for _, r := range rep.Results {
			byTenant[r.Tenant] = r
		}
		return byTenant, err
	}
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, name, nil)
			for _, args := range [][]string{{"setup"}, {"seed", "--accounts", "3", "--max-projects", "2", "--quiet"}} {
				if out, err := runCmd(t, env, args...); err != nil {
					t.Fatalf("tenancy %v: %v\n%s", args, err, out)
				}
			}
			out, err := runCmd(t, env, "migrate", "--jobs", "2")
			if err != nil || !strings.Contains(out, "TENANT") || !strings.Contains(out, "0 failed, 0 not attempted") {
				t.Fatalf("tenancy migrate: err = %v, want a table with nothing failed:\n%s", err, out)
			}
			got, err := migrateJSON(t, env)
			if err != nil {
				t.Fatalf("tenancy migrate --json: %v", err)
			}
			wantTenants := []string{"tenant-0", "tenant-1", "tenant-2"}
			if name == strategy.SingleSchema {
				wantTenants = []string{""} // the one shared database
			}
			for _, slug := range wantTenants {
				if got[slug].Status != "current" {
					t.Errorf("tenancy migrate --json: %q is %+v, want current", slug, got[slug])
				}
			}
			if name != strategy.MultiDB {
				return
			}
			pgtest.Drop(t, env["PGDATABASE"]+"_tenant-1")
			got, err = migrateJSON(t, env, "--jobs", "1")
			if err == nil || exitCode(err) != 1 || got["tenant-0"].Status != "current" || got["tenant-1"].Status != "failed" ||
				!strings.Contains(got["tenant-1"].Error, "run `tenancy setup`") || got["tenant-2"].Status != "not attempted" || !strings.Contains(got["tenant-2"].Skipped, "tenant-1") {
				t.Errorf("tenancy migrate --jobs 1 with tenant-1's database gone: err = %v, results %+v; want exit 1, tenant-1 failed saying to run setup, tenant-2 not attempted", err, got)
			}
			got, err = migrateJSON(t, env, "--jobs", "1", "--continue")
			if err == nil || got["tenant-1"].Status != "failed" || got["tenant-2"].Status != "current" {
				t.Errorf("tenancy migrate --continue: err = %v, results %+v; want tenant-1 failed and tenant-2 migrated (current)", err, got)
			}
			got, err = migrateJSON(t, env, "--canary", "2", "--jobs", "1", "--continue")
			if err == nil || got["tenant-2"].Status != "not attempted" || !strings.Contains(got["tenant-2"].Skipped, "canary") {
				t.Errorf("tenancy migrate --canary 2 with the second canary failing: err = %v, results %+v; want tenant-2 not attempted, even with --continue", err, got)
			}
		})
	}
}
