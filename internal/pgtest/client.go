package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// ClientPrograms returns the path of each of PostgreSQL's client programs
// named (pg_dump, pg_restore, pg_dumpall, psql), of the test server's major
// version, by name. pg_dump refuses a server newer than itself, and an
// archive written by one version of pg_dump is read by a pg_restore at
// least as new, so the versions must match the server, not merely exist;
// Debian's /usr/bin/pg_dump is a wrapper that may pick another version.
// It fails the test (CI=true) or skips it when a program is missing.
func ClientPrograms(t testing.TB, names ...string) map[string]string {
	t.Helper()
	Require(t)
	major, err := serverMajor()
	if err != nil {
		t.Fatalf("pgtest: read the server's version: %v", err)
	}
	found := make(map[string]string, len(names))
	for _, name := range names {
		p, err := clientProgram(name, major)
		if err != nil {
			Need(t, fmt.Sprintf("pgtest: %v; install Debian's postgresql-client-%d package (it comes with postgresql-%d)", err, major, major))
		}
		found[name] = p
	}
	return found
}

func serverMajor() (int, error) {
	db, err := sql.Open("pgx", adminDSN("postgres"))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var num int
	if err := db.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return 0, err
	}
	return num / 10000, nil
}

var clientVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// clientProgram finds name of PostgreSQL major version: in Debian's
// /usr/lib/postgresql/<major>/bin, else on PATH if that one says it is of
// that version.
func clientProgram(name string, major int) (string, error) {
	p := filepath.Join("/usr/lib/postgresql", strconv.Itoa(major), "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s %d not found in /usr/lib/postgresql/%d/bin or PATH", name, major, major)
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %v", p, err)
	}
	m := clientVersion.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version said %q, not a PostgreSQL version", p, bytes.TrimSpace(out))
	}
	if v, _ := strconv.Atoi(string(m[1])); v != major {
		return "", fmt.Errorf("%s is version %d, the server %d", p, v, major)
	}
	return p, nil
}
