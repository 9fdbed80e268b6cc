// Package scripts holds the tests of the shell scripts beside them.
package scripts

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"tenancy/internal/pgsettings"
	"tenancy/internal/pgtest"
)

// debianRoots are the directories Debian's cluster tools (pg_lsclusters,
// pg_createcluster, pg_ctlcluster, pg_dropcluster) work in for one test:
// PG_CLUSTER_CONF_ROOT for cluster configurations and PGSYSCONFDIR for a
// createcluster.conf that puts data directories under the test's own
// directory. The machine's own clusters are not listed there, so nothing
// the script does can reach them.
type debianRoots struct {
	dir string
}

func newDebianRoots(t *testing.T) debianRoots {
	t.Helper()
	// Where pgtest keeps its clusters (memory, when there is room): these
	// are thrown away as theirs are.
	dir, err := os.MkdirTemp(pgtest.ScratchDir(), "tenancy-script-")
	if err != nil {
		t.Fatal(err)
	}
	// The postgres OS user must reach the data directories below it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := debianRoots{dir}
	for _, d := range []string{r.confRoot(), r.commonDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("data_directory = '%s/%%v/%%c'\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(filepath.Join(r.commonDir(), "createcluster.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Every cluster made here, stopped and dropped (with its log,
		// which pg_createcluster puts in /var/log/postgresql), then the rest.
		for _, c := range r.clusters(t) {
			if out, err := r.command("pg_dropcluster", "--stop", c.version, c.name).CombinedOutput(); err != nil {
				t.Errorf("pg_dropcluster %s/%s: %v\n%s", c.version, c.name, err, out)
			}
		}
		os.RemoveAll(dir)
	})
	return r
}

func (r debianRoots) confRoot() string  { return filepath.Join(r.dir, "etc") }
func (r debianRoots) commonDir() string { return filepath.Join(r.dir, "common") }

func (r debianRoots) env() []string {
	return []string{"PG_CLUSTER_CONF_ROOT=" + r.confRoot(), "PGSYSCONFDIR=" + r.commonDir()}
}

func (r debianRoots) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(baseEnv(), r.env()...)
	return cmd
}

type cluster struct{ version, name, port string }

// clusters are those pg_lsclusters lists in these roots.
func (r debianRoots) clusters(t *testing.T) []cluster {
	t.Helper()
	out, err := r.command("pg_lsclusters", "-h").Output()
	if err != nil {
		t.Errorf("pg_lsclusters: %v", err)
		return nil
	}
	var cs []cluster
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			cs = append(cs, cluster{f[0], f[1], f[2]})
		}
	}
	return cs
}

// createCluster makes a Debian cluster on port as a developer would, with
// trust authentication, and starts it; the script has no part in it.
func (r debianRoots) createCluster(t *testing.T, version, name string, port int) {
	t.Helper()
	out, err := r.command("pg_createcluster", "--port", strconv.Itoa(port), "--logfile", filepath.Join(r.dir, name+".log"),
		"--start", version, name, "--", "--auth=trust", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("pg_createcluster %s/%s: %v\n%s", version, name, err, out)
	}
}

// devName names a developer's cluster made by a test. Unique: pg_dropcluster
// deletes /var/log/postgresql/postgresql-<version>-<name>.log, whichever
// cluster wrote it.
func devName(port int) string { return fmt.Sprintf("dev-%d", port) }

// baseEnv is the environment the script runs in: no PG* variables of the
// test's own, which name the shared server.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LANG=C.UTF-8"}
}

// settings are what the tests compare before and after the script.
type settings struct {
	maxConnections int
	sharedBuffers  string
	autoConf       string // postgresql.auto.conf, where ALTER SYSTEM writes
	systemID       string
}

func readSettings(t *testing.T, port int) settings {
	t.Helper()
	db, err := sql.Open("pgx", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s settings
	var dataDir string
	err = db.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int, current_setting('shared_buffers'),
		current_setting('data_directory'), (SELECT system_identifier::text FROM pg_control_system())`).
		Scan(&s.maxConnections, &s.sharedBuffers, &dataDir, &s.systemID)
	if err != nil {
		t.Fatalf("read the settings of the server on port %d: %v", port, err)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s.autoConf = string(b)
	return s
}

// runScript runs ensure-postgres.sh for the server on port with env added.
func runScript(t *testing.T, port int, env ...string) string {
	t.Helper()
	if port == 5432 {
		t.Fatal("the script's tests must never run it against port 5432, the machine's own server")
	}
	cmd := exec.Command("bash", "ensure-postgres.sh")
	cmd.Env = append(append(baseEnv(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(port), "PGUSER=postgres"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ensure-postgres.sh on port %d: %v\n%s", port, err, out)
	}
	return string(out)
}

// requireDebianTools fails (CI=true) or skips the test unless it can make
// Debian clusters: Debian's tools, and root, which pg_createcluster and the
// script's restarts need.
func requireDebianTools(t *testing.T) {
	t.Helper()
	var missing string
	if _, err := exec.LookPath("pg_createcluster"); err != nil {
		missing = "Debian's postgresql-common (pg_createcluster) is not installed; `make db` installs it"
	} else if os.Geteuid() != 0 {
		missing = "the script's tests make clusters with pg_createcluster, which needs root"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(missing)
	}
	t.Skip(missing)
}

// TestEnsurePostgresLeavesOthersClusters runs the script against servers
// it did not create, each the test's own on a free port: it must leave
// their settings exactly as they were and, when they are too small for
// what was asked, say how to raise them.
func TestEnsurePostgresLeavesOthersClusters(t *testing.T) {
	requireDebianTools(t)
	t.Parallel()
	multidb100 := []string{"STRATEGY=multidb", "MULTIDB_COUNT=100"}
	want300 := fmt.Sprintf("wants about %d", pgsettings.MultiDBConnections(100, 3))
	for _, tc := range []struct {
		name string
		// start starts the server and returns its port; roots are the
		// Debian directories the script runs with.
		start    func(t *testing.T, roots debianRoots) int
		env      []string
		want     []string // in the script's output
		wantNone bool     // the script says nothing
	}{
		{
			name:  "initdb cluster, 100 multidb tenants asked",
			start: func(t *testing.T, _ debianRoots) int { return pgtest.NewCluster(t).Port },
			env:   multidb100,
			want: []string{"max_connections is 100", want300, "ALTER SYSTEM SET max_connections = 300",
				"pg_ctl -D ", "this script did not create it"},
		},
		{
			name: "a developer's Debian cluster, 100 multidb tenants asked",
			start: func(t *testing.T, roots debianRoots) int {
				port := pgtest.FreePort(t)
				roots.createCluster(t, postgresVersion(t), devName(port), port)
				return port
			},
			env:  multidb100,
			want: []string{"max_connections is 100", want300, "pg_ctlcluster " + postgresVersion(t) + " dev-", "this script did not create it"},
		},
		{
			name: "a Debian cluster with a marker from another cluster",
			start: func(t *testing.T, roots debianRoots) int {
				port := pgtest.FreePort(t)
				roots.createCluster(t, postgresVersion(t), devName(port), port)
				// What pg_dropcluster leaves behind when the script's cluster
				// of this name is dropped and another one created.
				marker := filepath.Join(roots.confRoot(), postgresVersion(t), devName(port), "tenancy-created")
				if err := os.WriteFile(marker, []byte("system_identifier=7000000000000000001\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return port
			},
			env:  multidb100,
			want: []string{want300, "this script did not create it"},
		},
		{
			name: "a developer's Debian cluster, singleschema",
			start: func(t *testing.T, roots debianRoots) int {
				port := pgtest.FreePort(t)
				roots.createCluster(t, postgresVersion(t), devName(port), port)
				return port
			},
			env:      []string{"STRATEGY=singleschema"},
			wantNone: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			roots := newDebianRoots(t)
			port := tc.start(t, roots)
			before := readSettings(t, port)
			out := runScript(t, port, append(tc.env, roots.env()...)...)
			after := readSettings(t, port)
			if after != before {
				t.Errorf("ensure-postgres.sh changed a server it did not create: before %+v, after %+v\n%s", before, after, out)
			}
			if tc.wantNone && out != "" {
				t.Errorf("ensure-postgres.sh printed %q, want nothing: nothing asked for is too small", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("ensure-postgres.sh printed\n%s\nwant %q in it", out, w)
				}
			}
		})
	}
}

// TestEnsurePostgresTunesItsOwnCluster lets the script create a cluster
// (in the test's own Debian directories, on a free port) and checks that
// it marks the cluster as its own, with its system identifier, and tunes
// it, unless TENANCY_TUNE_POSTGRES=0; a second run changes nothing.
func TestEnsurePostgresTunesItsOwnCluster(t *testing.T) {
	requireDebianTools(t)
	t.Parallel()
	for _, tc := range []struct {
		name      string
		env       []string
		wantConns int
		want      []string
	}{
		{"tuned", nil, 300, []string{"creating PostgreSQL cluster", "raising max_connections 100 -> 300"}},
		{"TENANCY_TUNE_POSTGRES=0", []string{"TENANCY_TUNE_POSTGRES=0"}, 100,
			[]string{"creating PostgreSQL cluster", "max_connections is 100", "leaving the server on port", "TENANCY_TUNE_POSTGRES=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			roots := newDebianRoots(t)
			port := pgtest.FreePort(t)
			env := append(tc.env, roots.env()...)
			out := runScript(t, port, env...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("ensure-postgres.sh printed\n%s\nwant %q in it", out, w)
				}
			}
			cs := roots.clusters(t)
			if len(cs) != 1 || cs[0].port != strconv.Itoa(port) {
				t.Fatalf("clusters after the script: %+v, want one on port %d", cs, port)
			}
			s := readSettings(t, port)
			marker, err := os.ReadFile(filepath.Join(roots.confRoot(), cs[0].version, cs[0].name, "tenancy-created"))
			if err != nil || !strings.Contains(string(marker), "system_identifier="+s.systemID+"\n") {
				t.Errorf("marker of the new cluster = %q (err %v), want its system identifier %s", marker, err, s.systemID)
			}
			if s.maxConnections != tc.wantConns {
				t.Errorf("max_connections of the script's cluster = %d, want %d\n%s", s.maxConnections, tc.wantConns, out)
			}
			again := runScript(t, port, env...)
			if after := readSettings(t, port); after != s || strings.Contains(again, "raising") {
				t.Errorf("a second run changed the cluster: %+v -> %+v\n%s", s, after, again)
			}
		})
	}
}

// postgresVersion is the newest PostgreSQL installed, as the script picks.
func postgresVersion(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best := 0
	for _, d := range dirs {
		if v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(d)))); err == nil {
			best = max(best, v)
		}
	}
	if best == 0 {
		t.Fatal("no PostgreSQL under /usr/lib/postgresql")
	}
	return strconv.Itoa(best)
}
