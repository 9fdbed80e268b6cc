package compare

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUUse is the CPU time (user + system) each part of a run on this
// machine used during one load: where the time went, when every part
// shares the same cores.
type CPUUse struct {
	// Coordinator and Workers are the Citus nodes' postmasters with all
	// their children (backends, background workers), the workers summed.
	Coordinator, Workers time.Duration
	// Server is the tenancy server process.
	Server time.Duration
	// Generator is this process (the built-in load generator, and the
	// run's own sampling of PostgreSQL, which is little beside it) and
	// its children that ended meanwhile: wrk, when it ran the load.
	Generator time.Duration
	// Machine is the CPU time every process on the machine used (from
	// /proc/stat), these parts included: what is left is other work
	// that shared the cores with them.
	Machine time.Duration
	// Window is the wall-clock time between the two readings (a sample
	// holds the time it was taken), a little longer than the load.
	Window time.Duration
	at     time.Time
}

// Total is every part's CPU time.
func (c CPUUse) Total() time.Duration { return c.Coordinator + c.Workers + c.Server + c.Generator }

// clockTick is /proc's unit of CPU time: USER_HZ, which Linux fixes at
// 100 on every architecture Go runs on (sysconf(_SC_CLK_TCK)).
const clockTick = 10 * time.Millisecond

// procTimes are one process's CPU times from /proc/<pid>/stat.
type procTimes struct {
	ppid int
	// own is utime + stime; reaped is cutime + cstime, the children it
	// has waited for: a postmaster's backends that ended.
	own, reaped time.Duration
}

// parseStat reads /proc/<pid>/stat's text. The command name, in
// parentheses, may hold spaces and parentheses itself, so the fields
// are counted from the last ')'.
func parseStat(stat string) (procTimes, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return procTimes{}, errors.New("no command name")
	}
	// After the name: state(3) ppid(4) ... utime(14) stime(15)
	// cutime(16) cstime(17), numbered as in proc(5).
	f := strings.Fields(stat[end+1:])
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	field := func(n int) (int64, error) { return strconv.ParseInt(f[n-3], 10, 64) }
	var v [5]int64
	for i, n := range []int{4, 14, 15, 16, 17} {
		var err error
		if v[i], err = field(n); err != nil {
			return procTimes{}, fmt.Errorf("field %d: %w", n, err)
		}
	}
	return procTimes{ppid: int(v[0]), own: time.Duration(v[1]+v[2]) * clockTick, reaped: time.Duration(v[3]+v[4]) * clockTick}, nil
}

func readStat(pid int) (procTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	t, err := parseStat(string(b))
	if err != nil {
		return procTimes{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return t, nil
}

// treeCPU is the CPU time root and its children have used so far: its
// own, its children's that it has reaped, and each living child's. That
// is all of a postmaster's work, since PostgreSQL's processes are all its
// children, and a backend that ends during a load is counted in the
// postmaster's reaped time. A child ending between the reading of the
// list and of the root is counted twice or not at all: one backend's
// share, which the loads' long-lived pools make rare.
func treeCPU(root int) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		t, err := readStat(pid)
		if gone(err) {
			continue // ended after the listing
		}
		if err != nil {
			return 0, err
		}
		if t.ppid == root {
			total += t.own + t.reaped
		}
	}
	t, err := readStat(root)
	if err != nil {
		return 0, err
	}
	return total + t.own + t.reaped, nil
}

// gone says whether err is reading /proc for a process that has ended:
// ENOENT once it is reaped, ESRCH while the read races its end.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// selfCPU is this process's CPU time and its reaped children's.
func selfCPU() (time.Duration, error) {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		return 0, err
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		return 0, err
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime), nil
}

// cpuMeter reads the CPU time of a Citus run's parts: the postmasters of
// the coordinator and the workers, and the server.
type cpuMeter struct {
	coordinator int
	workers     []int
	server      int
}

// sample is every part's CPU time so far.
func (m cpuMeter) sample() (CPUUse, error) {
	c := CPUUse{at: time.Now()}
	var err error
	if c.Coordinator, err = treeCPU(m.coordinator); err != nil {
		return c, fmt.Errorf("CPU time of the coordinator (pid %d): %w", m.coordinator, err)
	}
	for _, w := range m.workers {
		d, err := treeCPU(w)
		if err != nil {
			return c, fmt.Errorf("CPU time of a worker (pid %d): %w", w, err)
		}
		c.Workers += d
	}
	t, err := readStat(m.server)
	if err != nil {
		return c, fmt.Errorf("CPU time of the server (pid %d): %w", m.server, err)
	}
	c.Server = t.own + t.reaped
	if c.Generator, err = selfCPU(); err != nil {
		return c, fmt.Errorf("CPU time of the load generator: %w", err)
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c, err
	}
	if c.Machine, err = parseMachineStat(string(b)); err != nil {
		return c, fmt.Errorf("/proc/stat: %w", err)
	}
	return c, nil
}

// parseMachineStat is the busy CPU time of every core from /proc/stat's
// first line: user, nice, system, irq and softirq; not idle or iowait, and
// not steal, the time a virtual machine's cores ran other machines' work
// (guest time is already in user).
func parseMachineStat(stat string) (time.Duration, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("first line %q: want cpu and at least 8 figures", line)
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system (idle iowait) irq softirq
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("field %d of %q: %w", i, line, err)
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// since is what was used between before and c.
func (c CPUUse) since(before CPUUse) CPUUse {
	return CPUUse{
		Coordinator: c.Coordinator - before.Coordinator, Workers: c.Workers - before.Workers,
		Server: c.Server - before.Server, Generator: c.Generator - before.Generator,
		Machine: c.Machine - before.Machine, Window: c.at.Sub(before.at),
	}
}

// perRequest is d spread over n requests.
func perRequest(d time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return d / time.Duration(n)
}
