package main

import (
	"fmt"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// TestCheckCommand runs `tenancy check` on a fresh deployment of each
// strategy, then on one broken on purpose, where serve must refuse too.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		strategy string
		breakIn  func(env map[string]string) (database, stmt string)
		want     []string // in check's output
		serve    string   // in serve's refusal; empty: serve is not run
	}{
		{"singleschema, FORCE dropped", strategy.SingleSchema,
			func(env map[string]string) (string, string) {
				return env["PGDATABASE"], "ALTER TABLE subtasks NO FORCE ROW LEVEL SECURITY"
			},
			[]string{"FINDING [rls-not-forced] (breaks isolation) table subtasks", "FORCE ROW LEVEL SECURITY"},
			"row-level security is not forced"},
		{"singleschema, policy open to all", strategy.SingleSchema,
			func(env map[string]string) (string, string) {
				return env["PGDATABASE"], "ALTER POLICY tenant_isolation ON tasks USING (true)"
			},
			[]string{"FINDING [policy-open-without-tenant] (breaks isolation) table tasks", "FINDING [policy-open-to-other-tenant]"},
			""}, // an empty database: only check's canary shows this one
		{"multidb, tenant database dropped", strategy.MultiDB,
			func(env map[string]string) (string, string) {
				return "postgres", fmt.Sprintf(`DROP DATABASE "%s_tenant-1" WITH (FORCE)`, env["PGDATABASE"])
			},
			[]string{"FINDING [database-missing] database", "_tenant-1", "run `tenancy setup`"},
			""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, tt.strategy, nil)
			if out, err := runCmd(t, env, "setup"); err != nil {
				t.Fatalf("setup: %v\n%s", err, out)
			}
			out, err := runCmd(t, env, "check")
			if err != nil || !strings.Contains(out, "check: no findings") || strings.Contains(out, "FINDING") {
				t.Fatalf("check of a fresh deployment: err %v, output:\n%s\nwant no findings", err, out)
			}

			database, stmt := tt.breakIn(env)
			if _, err := pgtest.Admin(t, database).Exec(stmt); err != nil {
				t.Fatal(err)
			}
			out, err = runCmd(t, env, "check")
			if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "findings") {
				t.Errorf("check after %s: err = %v (exit %d), want exit 1 counting the findings", stmt, err, exitCode(err))
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("check after %s: output lacks %q:\n%s", stmt, w, out)
				}
			}
			if tt.serve == "" {
				return
			}
			_, err = runCmd(t, env, "serve", "--addr", "127.0.0.1:0")
			if err == nil || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), tt.serve) {
				t.Errorf("serve after %s: err = %v, want a refusal saying %q", stmt, err, tt.serve)
			}
		})
	}
}
