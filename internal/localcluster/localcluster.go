// Package localcluster starts throwaway PostgreSQL clusters on this
// machine, outside tests: each an initdb into a temporary directory and a
// postgres process, a child of this one, on a free loopback port, stopped
// and deleted by Stop. A Citus is a coordinator and workers made that way,
// with Citus preloaded and a database made on every node.
//
// tenancy compare runs its Citus column on one, so that it can measure
// singleschema on Citus wherever Citus is installed, and can read every
// node's processes from /proc. (internal/pgtest and internal/citustest do
// the same for tests, tied to testing.TB.)
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Node is one running throwaway cluster.
type Node struct {
	// Port it listens on, at 127.0.0.1.
	Port int
	dir  string // the cluster's temporary directory: data, socket, log
	cmd  *exec.Cmd
	// exited is closed when the postmaster has exited and waitErr is set.
	exited  chan struct{}
	waitErr error
	stop    sync.Once
	stopErr error
}

// PID is the postmaster's process id: every backend and background
// process of the cluster is its child.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// Dir is the cluster's temporary directory, removed by Stop.
func (n *Node) Dir() string { return n.dir }

// DSN is a connection URL to database on the node as the postgres
// superuser (trusted on loopback).
func (n *Node) DSN(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", n.Port, database)
}

// ServerBinDir is the directory of the server programs (initdb, postgres,
// pg_config): the newest /usr/lib/postgresql/<version>/bin on Debian, else
// wherever PATH has them.
func ServerBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(binDir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL's server programs are not installed: initdb is not in /usr/lib/postgresql/*/bin or PATH")
}

// serviceUser is whom the clusters run as: PostgreSQL refuses to run as
// root, so as the postgres OS user (Debian's packages make it) when this
// process is root, else as this process's user.
type serviceUser struct {
	cred *syscall.Credential // nil: this process's user
}

func lookupServiceUser() (serviceUser, error) {
	if os.Geteuid() != 0 {
		return serviceUser{}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return serviceUser{}, errors.New("running as root, and there is no postgres OS user to run PostgreSQL as (install Debian's postgresql package)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return serviceUser{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}, nil
}

func (u serviceUser) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	return cmd
}

// Start makes a cluster in a new temporary directory and starts it, with
// settings ("name=value") on its command line. It returns once the
// cluster accepts connections; on an error nothing is left behind.
func Start(ctx context.Context, settings ...string) (*Node, error) {
	bin, err := ServerBinDir()
	if err != nil {
		return nil, err
	}
	su, err := lookupServiceUser()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tenancy-localcluster-")
	if err != nil {
		return nil, fmt.Errorf("make a directory for a cluster: %w", err)
	}
	if su.cred != nil {
		if err := os.Chown(dir, int(su.cred.Uid), int(su.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("hand %s to the postgres user: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")
	// --no-sync: the cluster is thrown away after the run.
	if out, err := su.command(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb %s: %v\n%s", data, err, out)
	}
	var lastErr error
	for range 3 { // a free port can be taken before the server listens on it
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		n, err := start(ctx, su, bin, dir, port, settings)
		if err == nil {
			return n, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func start(ctx context.Context, su serviceUser, bin, dir string, port int, settings []string) (*Node, error) {
	args := []string{"-D", filepath.Join(dir, "data"), "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	log, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	// Not CommandContext: Stop ends it, in the way PostgreSQL wants.
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	// Its own process group, so that Ctrl-C at a terminal reaches this
	// process only, which then stops the cluster after what runs on it;
	// and an immediate shutdown should this process die without stopping
	// it (Go sets the signal after dropping root, so it survives that).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: su.cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres on port %d: %w", port, err)
	}
	n := &Node{Port: port, dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() {
		n.waitErr = cmd.Wait()
		close(n.exited)
	}()
	if err := n.waitReady(ctx, time.Minute); err != nil {
		n.kill()
		logText, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return nil, fmt.Errorf("start postgres on port %d: %w\n%s", port, err, tail(string(logText), 2000))
	}
	return n, nil
}

// waitReady waits until the node accepts a connection, or gives up.
func (n *Node) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := pgx.Connect(attempt, n.DSN("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		last = err
		select {
		case <-n.exited:
			return fmt.Errorf("postgres exited: %v", n.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not accepting connections after %s: %v", within, last)
}

// kill ends the postmaster at once (it has accepted nothing worth
// keeping) and waits for it.
func (n *Node) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// Stop shuts the node down immediately (nothing in it is worth a
// checkpoint) and removes its directory. It may be called more than once.
func (n *Node) Stop() error {
	n.stop.Do(func() {
		select {
		case <-n.exited:
		default:
			// SIGQUIT: immediate shutdown; the postmaster ends its
			// backends before it exits.
			_ = n.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-n.exited:
			case <-time.After(30 * time.Second):
				n.kill()
				n.stopErr = fmt.Errorf("postgres on port %d did not stop within 30s and was killed", n.Port)
			}
		}
		if err := os.RemoveAll(n.dir); err != nil {
			n.stopErr = errors.Join(n.stopErr, fmt.Errorf("remove %s: %w", n.dir, err))
		}
	})
	return n.stopErr
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
