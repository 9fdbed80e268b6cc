package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"
	"time"

	"tenancy/internal/localcluster"
)

// Need fails the test (CI=true) or skips it (elsewhere) because something
// it needs is missing; msg says what and how to get it.
func Need(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right
// now. Another process may take it before the caller does; callers that
// start a server retry on a clash.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serviceUser is the OS user PostgreSQL and PgBouncer run as: they refuse
// to run as root, and Debian's packages create "postgres". When the tests
// do not run as root, the processes run as the current user.
type serviceUser struct {
	name     string // empty: the current user
	uid, gid int
}

func lookupServiceUser(t testing.TB) serviceUser {
	t.Helper()
	if os.Geteuid() != 0 {
		return serviceUser{uid: os.Geteuid(), gid: os.Getegid()}
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		Need(t, "pgtest: the tests run as root and there is no postgres OS user to run PostgreSQL and PgBouncer as; install Debian's postgresql package (`make db` does)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return serviceUser{name: u.Username, uid: uid, gid: gid}
}

// command runs bin with args as the service user (through runuser when the
// tests run as root).
func (u serviceUser) command(bin string, args ...string) *exec.Cmd {
	if u.name == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("runuser", append([]string{"-u", u.name, "--", bin}, args...)...)
}

// privateDir makes a temporary directory owned by the service user and
// readable by nobody else, in ScratchDir, removed at cleanup.
func (u serviceUser) privateDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp(ScratchDir(), pattern)
	if err != nil {
		t.Fatalf("pgtest: make a temporary directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, u.uid, u.gid); err != nil {
		t.Fatalf("pgtest: hand %s to the service user: %v", dir, err)
	}
	return dir
}

// writeFile writes a file the service user owns.
func (u serviceUser) writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("pgtest: write %s: %v", path, err)
	}
	if err := os.Chown(path, u.uid, u.gid); err != nil {
		t.Fatalf("pgtest: hand %s to the service user: %v", path, err)
	}
}

// scratchEnv names a directory for the throwaway clusters' data instead of
// the one ScratchDir picks.
const scratchEnv = "TENANCY_TEST_SCRATCH"

// minScratchFree is the room ScratchDir wants on a memory file system
// before it puts clusters there: the Citus tests' nodes grow to some
// hundreds of megabytes each.
const minScratchFree = 4 << 30

// ScratchDir is where throwaway clusters and PgBouncers keep their files:
// $TENANCY_TEST_SCRATCH when set, else /dev/shm when it is a memory file
// system (tmpfs) with minScratchFree or more available, else "" (the
// temporary directory). On a disk, a cluster's initdb and, worse, the
// removal of its data at cleanup wait on the disk: a Citus node of the
// singleschema tests (some hundreds of megabytes in thousands of files)
// took tens of seconds to delete on a disk mounted with discard, time no
// test's duration shows. Their data is thrown away, so memory is enough.
func ScratchDir() string {
	if d := os.Getenv(scratchEnv); d != "" {
		return d
	}
	const shm, tmpfsMagic = "/dev/shm", 0x01021994
	var st syscall.Statfs_t
	if err := syscall.Statfs(shm, &st); err != nil || st.Type != tmpfsMagic ||
		st.Bavail*uint64(st.Bsize) < minScratchFree || syscall.Access(shm, 2 /* W_OK */) != nil {
		return ""
	}
	return shm
}

// waitForPort waits until something accepts TCP connections on
// 127.0.0.1:port, or exited reports that the process gave up.
func waitForPort(port int, exited <-chan error, within time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening on %s: %v", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, within)
}

// ServerBinDir is the directory of the server programs the throwaway
// clusters run (initdb, pg_ctl, pg_config): see localcluster.ServerBinDir.
func ServerBinDir() (string, error) { return localcluster.ServerBinDir() }
