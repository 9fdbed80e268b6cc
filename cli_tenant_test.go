package main

import (
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

func TestTenantSubcommandsHaveHelp(t *testing.T) {
	for _, c := range tenantCommands() {
		out, err := runCmd(t, map[string]string{}, "tenant", c.name, "--help")
		if err != nil || !strings.Contains(out, "Usage: tenancy tenant "+c.name) || !strings.Contains(out, "STRATEGY") {
			t.Errorf("tenancy tenant %s --help: err %v, output:\n%s", c.name, err, out)
		}
	}
	if _, err := runCmd(t, map[string]string{}, "tenant", "frobnicate"); exitCode(err) != 2 {
		t.Errorf("tenancy tenant frobnicate: %v (exit %d), want a usage error", err, exitCode(err))
	}
}

// deploymentDigest is an md5 of every row of every table in every
// database, schema and role of the deployment env names: two equal digests
// mean nothing was written.
func deploymentDigest(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	base := env["PGDATABASE"]
	out := map[string]string{}
	maint := pgtest.Admin(t, "postgres")
	rows, err := maint.Query(`SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $1 || '_') ORDER BY 1`, base)
	if err != nil {
		t.Fatal(err)
	}
	var dbs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, d)
	}
	rows.Close()
	var roles string
	if err := maint.QueryRow(`SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE starts_with(rolname, $1)`, base).Scan(&roles); err != nil {
		t.Fatal(err)
	}
	out["roles"] = roles
	for _, d := range dbs {
		db := pgtest.Admin(t, d)
		rows, err := db.Query(`SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		rows.Close()
		for _, table := range tables {
			var sum sql.NullString
			if err := db.QueryRow(`SELECT md5(string_agg(r::text, E'\n' ORDER BY r::text)) FROM ` + table + ` r`).Scan(&sum); err != nil {
				t.Fatalf("digest %s.%s: %v", d, table, err)
			}
			out[d+"."+table] = sum.String
		}
	}
	return out
}

func digestsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestTenantCommands drives `tenancy tenant` in each strategy: create,
// list (table and JSON), the refusals (an existing slug, a bad slug,
// delete without --yes), each of which writes nothing at all, and delete.
func TestTenantCommands(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, name, nil)
			for _, args := range [][]string{{"setup"}, {"seed", "--accounts", "2", "--quiet"}} {
				if out, err := runCmd(t, env, args...); err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
			}
			out, err := runCmd(t, env, "tenant", "create", "acme", "--name", "Acme Inc")
			if err != nil || !strings.Contains(out, "tenant acme: created in") {
				t.Fatalf("tenant create acme: %v\n%s", err, out)
			}
			out, err = runCmd(t, env, "tenant", "list")
			if err != nil || !strings.Contains(out, "acme") || !strings.Contains(out, "Acme Inc") || !strings.Contains(out, "tenant-1") {
				t.Errorf("tenant list: %v\n%s\nwant acme and tenant-1", err, out)
			}
			out, err = runCmd(t, env, "tenant", "list", "--json")
			var entries []strategy.TenantEntry
			if err != nil || json.Unmarshal([]byte(out), &entries) != nil {
				t.Fatalf("tenant list --json: %v\n%s", err, out)
			}
			var slugs []string
			for _, e := range entries {
				slugs = append(slugs, e.Slug)
			}
			if !slices.Contains(slugs, "acme") || !slices.Contains(slugs, "tenant-0") || !slices.IsSorted(slugs) {
				t.Errorf("tenant list --json slugs = %v, want acme and tenant-0, by slug", slugs)
			}

			before := deploymentDigest(t, env)
			for _, tc := range []struct {
				args []string
				exit int
				want []string
			}{
				{[]string{"tenant", "create", "acme", "--name", "Other"}, 1, []string{"exists", "nothing was written"}},
				{[]string{"tenant", "create", "tenant-0"}, 1, []string{"exists"}},
				{[]string{"tenant", "create", "Acme_Inc"}, 2, []string{"slug"}},
				{[]string{"tenant", "create", "tenant-007"}, 2, []string{"leading zeros"}},
				{[]string{"tenant", "create"}, 2, []string{"want 1 argument"}},
				{[]string{"tenant", "delete", "acme"}, 1, []string{"would lose", "refused without --yes", "nothing was removed"}},
				{[]string{"tenant", "delete", "nobody", "--yes"}, 1, []string{"not found"}},
			} {
				out, err := runCmd(t, env, tc.args...)
				if err == nil || exitCode(err) != tc.exit {
					t.Errorf("%v: err %v (exit %d), want exit %d\n%s", tc.args, err, exitCode(err), tc.exit, out)
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(out+err.Error(), w) {
						t.Errorf("%v: output lacks %q:\n%s%v", tc.args, w, out, err)
					}
				}
			}
			if after := deploymentDigest(t, env); !digestsEqual(before, after) {
				t.Errorf("refused commands wrote something:\nbefore %v\nafter  %v", before, after)
			}

			out, err = runCmd(t, env, "tenant", "delete", "acme", "--yes")
			if err != nil || !strings.Contains(out, "tenant acme: deleted") {
				t.Fatalf("tenant delete acme --yes: %v\n%s", err, out)
			}
			out, err = runCmd(t, env, "tenant", "list")
			if err != nil || strings.Contains(out, "acme") || !strings.Contains(out, "tenant-0") {
				t.Errorf("tenant list after the delete: %v\n%s\nwant tenant-0 and no acme", err, out)
			}
			if out, err := runCmd(t, env, "check"); err != nil {
				t.Errorf("check after create and delete: %v\n%s", err, out)
			}
		})
	}
}
