package compare

import (
	"bytes"
	"html"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// Fields after the name: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime ...
	const tail = " S 42 1 1 0 -1 4194560 10 20 0 0 150 50 7 3 20 0 1 0 100 1000 50"
	for _, tc := range []struct {
		name, stat string
		want       procTimes
		wantErr    bool
	}{
		{"a backend", "1234 (postgres)" + tail, procTimes{ppid: 42, own: 2 * time.Second, reaped: 100 * time.Millisecond}, false},
		{"a name with spaces and parentheses", "1234 (post (gres) x)" + tail, procTimes{ppid: 42, own: 2 * time.Second, reaped: 100 * time.Millisecond}, false},
		{"no name", "1234 postgres S 42", procTimes{}, true},
		{"cut short", "1234 (postgres) S 42 1 1 0", procTimes{}, true},
		{"not a number", "1234 (postgres) S 42 1 1 0 -1 4194560 10 20 0 0 x 50 7 3", procTimes{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.stat)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseStat(%q) = %+v, %v; want %+v, error %v", tc.stat, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// busyLoop keeps a shell on a core for a while (some hundreds of
// milliseconds), then becomes sleep: its CPU time is then fixed.
const busyLoop = `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 60`

// TestTreeCPUCountsChildren checks the two ways a postmaster's children's
// CPU time reaches treeCPU: a living child's own time, and an ended
// child's time in its parent's reaped time.
func TestTreeCPUCountsChildren(t *testing.T) {
	for _, tc := range []struct {
		name, script string
	}{
		{"a living child", "(" + busyLoop + ") & wait"},
		{"a child that ended", `sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; exec sleep 60`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("sh", "-c", tc.script)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				// The shell's group: the living child's sleep too.
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				cmd.Wait()
			})
			// Wait until the busy part is over: the busy process has
			// become sleep.
			for !sleeping(t, cmd.Process.Pid) {
				time.Sleep(20 * time.Millisecond)
			}
			root, err := readStat(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			got, err := treeCPU(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			if got <= root.own {
				t.Errorf("treeCPU = %s, no more than the root's own %s: the busy child's time is missing", got, root.own)
			}
		})
	}
}

// sleeping says whether pid, or a child of it, runs sleep.
func sleeping(t *testing.T, pid int) bool {
	t.Helper()
	comm := func(p string) string {
		b, _ := os.ReadFile("/proc/" + p + "/comm")
		return strings.TrimSpace(string(b))
	}
	if comm(itoa(pid)) == "sleep" {
		return true
	}
	children, _ := os.ReadFile("/proc/" + itoa(pid) + "/task/" + itoa(pid) + "/children")
	for _, c := range strings.Fields(string(children)) {
		if comm(c) == "sleep" {
			return true
		}
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestCPUSection renders a report with a Citus column whose loads had
// their CPU time measured beside a column whose loads did not: the
// section shows per-request figures for the first alone, says plainly
// that every part shared the machine's cores, and is left out of a report
// with no such figures.
func TestCPUSection(t *testing.T) {
	kinds := []string{LoadAnyPage, LoadFirstPage, LoadAllTenantsFirst}
	citus := sampleStrategy(CitusColumn, 1, kinds)
	for i := range citus.Loads {
		citus.Loads[i].CPU = &CPUUse{Coordinator: 6 * time.Second, Workers: 7500 * time.Millisecond, Server: 1500 * time.Millisecond, Generator: 900 * time.Millisecond, Machine: 19 * time.Second}
	}
	// A load that failed throughout still used CPU.
	citus.Loads[2].Requests, citus.Loads[2].OK, citus.Loads[2].Failed = 0, 0, 0
	withCitus := Report{
		Machine:    Machine{Cores: 2, Citus: "Citus 13.2.2 on x86_64; a coordinator and 2 workers"},
		Strategies: []StrategyResult{sampleStrategy("singleschema", 1, kinds), citus},
	}
	withCitus.Options.Accounts = 20
	for _, tc := range []struct {
		name   string
		report Report
		want   []string // in both formats; none: no section
	}{
		{"a Citus column", withCitus, []string{
			"Where the time goes on Citus",
			"all ran on this machine's 2 cores at once, so these figures are not what separate machines would give",
			"CPU per request, citus", "tenancy server", "load generator", "cores busy",
			// 6 s, 7.5 s, 1.5 s and 0.9 s over 3,000 requests in 10 s.
			"2 ms", "2.5 ms", "500 µs", "300 µs", "5.3 ms", "1.59 / 1.90 of 2",
			"Citus (the citus column)", "distributed over a Citus coordinator and 2 workers",
		}},
		{"no CPU measured", sampleReport(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var md, page bytes.Buffer
			if err := WriteMarkdown(&md, tc.report); err != nil {
				t.Fatal(err)
			}
			if err := WriteHTML(&page, tc.report); err != nil {
				t.Fatal(err)
			}
			for format, text := range map[string]string{"markdown": strings.ReplaceAll(md.String(), `\_`, "_"), "html": html.UnescapeString(page.String())} {
				if len(tc.want) == 0 && strings.Contains(text, "Where the time goes on Citus") {
					t.Errorf("%s has a CPU section, with no CPU figure measured", format)
				}
				for _, w := range tc.want {
					if !strings.Contains(text, w) {
						t.Errorf("%s lacks %q", format, w)
					}
				}
			}
			if len(tc.want) > 0 {
				table := md.String()[strings.Index(md.String(), "| CPU per request"):]
				if strings.Contains(table[:strings.Index(table, "\n\n")], "singleschema") {
					t.Errorf("the CPU table has a row or column for singleschema, whose CPU was not measured:\n%s", table)
				}
				if !strings.Contains(table, "| all tenants, first page | — | — | — | — | — | 1.59 / 1.90 of 2 |") {
					t.Errorf("a load with no requests should show — per request:\n%s", table)
				}
			}
		})
	}
}

func TestParseMachineStat(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"busy time only", "cpu  100 5 40 9000 30 1 2 3 0 0\ncpu0 50 2 20 4500 15 0 1 1 0 0\n", 1480 * time.Millisecond, false},
		{"not the total line", "cpu0 100 5 40 9000 30 1 2 3 0 0\n", 0, true},
		{"cut short", "cpu  100 5 40 9000\n", 0, true},
		{"not a number", "cpu  100 x 40 9000 30 1 2 3 0 0\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMachineStat(tc.stat)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseMachineStat(%q) = %s, %v; want %s, error %v", tc.stat, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestGone: a process that ends while /proc is read gives ESRCH rather
// than ENOENT, and a run once failed on it.
func TestGone(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "read", Path: "/proc/1/stat", Err: syscall.ESRCH}, true},
		{&fs.PathError{Op: "open", Path: "/proc/1/stat", Err: syscall.ENOENT}, true},
		{&fs.PathError{Op: "open", Path: "/proc/1/stat", Err: syscall.EACCES}, false},
		{nil, false},
	} {
		if got := gone(tc.err); got != tc.want {
			t.Errorf("gone(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestCPUUseSince checks the difference of two samples, part by part.
func TestCPUUseSince(t *testing.T) {
	before := CPUUse{Coordinator: time.Second, Workers: 2 * time.Second, Server: 3 * time.Second, Generator: 4 * time.Second}
	before.Machine = 20 * time.Second
	after := CPUUse{Coordinator: 3 * time.Second, Workers: 5 * time.Second, Server: 4 * time.Second, Generator: 8 * time.Second, Machine: 35 * time.Second}
	want := CPUUse{Coordinator: 2 * time.Second, Workers: 3 * time.Second, Server: time.Second, Generator: 4 * time.Second, Machine: 15 * time.Second}
	before.at = time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	after.at = before.at.Add(5 * time.Second)
	want.Window = 5 * time.Second
	got := after.since(before)
	got.at = time.Time{}
	if got != want || got.Total() != 10*time.Second || coresBusy(got, time.Second) != 2 || machineBusy(got, time.Second) != 3 {
		t.Errorf("since = %+v (total %s, %.2f and %.2f cores busy), want %+v (total 10s, 2 and 3 cores busy over the 5 s window)", got, got.Total(), coresBusy(got, time.Second), machineBusy(got, time.Second), want)
	}
}
