package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

func TestTenantTransferHelpAndMistakes(t *testing.T) {
	for _, sub := range []string{"export", "import"} {
		out, err := runCmd(t, map[string]string{}, "tenant", sub, "--help")
		if err != nil || !strings.Contains(out, "Usage: tenancy tenant "+sub) || !strings.Contains(out, "STRATEGY") {
			t.Errorf("tenancy tenant %s --help: err %v, output:\n%s", sub, err, out)
		}
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"tenant"}, "no command given"},
		{[]string{"tenant", "rename"}, `unknown command "rename"`},
		{[]string{"tenant", "export"}, "no tenant slug given"},
		{[]string{"tenant", "export", "tenant-1"}, "-o <file> is required"},
		{[]string{"tenant", "export", "tenant-1", "-o", "f", "tenant-2"}, `unexpected argument "tenant-2"`},
		{[]string{"tenant", "import"}, "no file given"},
		{[]string{"tenant", "import", "f", "--bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		_, err := runCmd(t, map[string]string{}, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || exitCode(err) != 2 {
			t.Errorf("tenancy %v: err = %v (exit %d), want one containing %q, exit 2", tt.args, err, exitCode(err), tt.want)
		}
	}
}

var checksumRE = regexp.MustCompile(`checksum ([0-9a-f]{16})`)

// The commands as an operator runs them: export a seeded tenant from
// singleschema (slug after or before the flags), import it into multidb
// with its checksum unchanged, be refused the second time, and import it
// again under a new slug.
func TestTenantExportImport(t *testing.T) {
	t.Parallel()
	from := pgtest.Env(t, strategy.SingleSchema, nil)
	to := pgtest.Env(t, strategy.MultiDB, nil)
	for _, env := range []map[string]string{from, to} {
		if out, err := runCmd(t, env, "setup"); err != nil {
			t.Fatalf("setup: %v\n%s", err, out)
		}
	}
	if out, err := runCmd(t, from, "seed", "--accounts", "3", "--quiet"); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	dir := t.TempDir()
	plain, zipped := filepath.Join(dir, "t1.tar"), filepath.Join(dir, "t1.tar.gz")
	out, err := runCmd(t, from, "tenant", "export", "tenant-1", "-o", plain)
	if err != nil {
		t.Fatalf("tenant export: %v\n%s", err, out)
	}
	exported := checksumRE.FindStringSubmatch(out)
	if exported == nil {
		t.Fatalf("tenant export printed no checksum:\n%s", out)
	}
	if out, err := runCmd(t, from, "tenant", "export", "-o", zipped, "tenant-1"); err != nil || !strings.Contains(out, exported[0]) {
		t.Fatalf("tenant export -o %s tenant-1: %v, want %s in\n%s", zipped, err, exported[0], out)
	}
	if b, err := os.ReadFile(zipped); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("%s is not gzip (%v)", zipped, err)
	}
	out, err = runCmd(t, to, "tenant", "import", zipped)
	if err != nil || !strings.Contains(out, exported[0]+" (the file's)") {
		t.Fatalf("tenant import: %v, want %q in\n%s", err, exported[0]+" (the file's)", out)
	}
	if out, err := runCmd(t, to, "tenant", "import", plain); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("tenant import of an existing slug: %v, want it refused\n%s", err, out)
	}
	// Under a slug the directory does not list: its database is made
	// and listed by the import.
	if out, err := runCmd(t, to, "tenant", "import", plain, "--as", "acme"); err != nil || !strings.Contains(out, "wrote acme (") {
		t.Errorf("tenant import --as acme: %v, want it written\n%s", err, out)
	}
	if out, err := runCmd(t, to, "tenant", "list"); err != nil || !strings.Contains(out, "acme") {
		t.Errorf("tenant list after the import --as acme: %v, want acme listed\n%s", err, out)
	}
	if out, err := runCmd(t, from, "tenant", "export", "tenant-7", "-o", filepath.Join(dir, "none.tar")); err == nil || !strings.Contains(err.Error(), "tenant not found") {
		t.Errorf("tenant export of a missing tenant: %v\n%s", err, out)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*none*")); len(left) > 0 {
		t.Errorf("a failed export left %v behind", left)
	}
}
