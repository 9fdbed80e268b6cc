package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"tenancy/configs"
	"tenancy/internal/compare"
	"tenancy/internal/pgsettings"
	"tenancy/internal/progress"
	"tenancy/seed"
	"tenancy/strategy"
)

func runCompare(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", `Measures the strategies side by side on identical data. For each strategy and
each number of tenants (--tenants; several make a sweep) it sets up fresh,
uniquely named databases (<PGDATABASE>_cmp_<random>) at the migration before
the schema change (*_subtask_priority.sql), seeds them with the same options
(the run checks the checksums match), applies the schema change and times it
(then any later migrations, untimed),
times a migrate with nothing pending, vacuums and analyzes, starts a server
(this binary's serve, on a loopback port), loads it uniformly and with
Zipf-skewed tenants (keep-alive, fixed concurrency, closed loop), probes
isolation under that load, times a tenant no load visited and the
cross-tenant report, and reads PostgreSQL's side (connections opened and
held, cache hits, backends' memory). Then it drops everything it made (on
Ctrl-C too) and writes <out>.md and <out>.html (tables, and charts against the
number of tenants on a log scale). For multidb, each tenant is a database; for
multischema, a schema. The citus column is singleschema on a Citus coordinator
and 2 workers that compare starts on this machine for it (initdb into a
temporary directory, free loopback ports) and removes after, when Citus is
installed (make citus); the report adds the CPU time per request of the
coordinator, the workers, the server and the load generator, which all share
this machine's cores. A sweep of 10,100,1000 takes about 20 minutes on two
cores, more with the citus column.`)
	o := seed.DefaultOptions()
	tenants := fs.String("tenants", "100", "tenants to measure each strategy at (multidb: a database each; multischema: a schema each); several, comma-separated (10,100,1000), make a sweep: fresh databases at each size, figures charted against the number of tenants")
	fs.IntVar(&o.Accounts, "accounts", 0, "the same as --tenants with one size (kept for scripts written before --tenants)")
	addDataFlags(fs, &o)
	duration := fs.Duration("duration", 10*time.Second, "how long each page is loaded")
	zipf := fs.Float64("zipf", compare.DefaultZipf, "exponent s of the skewed load: the tenant of rank k (by id) gets a share of requests proportional to 1/k^s")
	connections := fs.Int("connections", 16, "HTTP connections (requests in flight) per load")
	out := fs.String("out", "report", "write <out>.md and <out>.html")
	names := fs.String("strategies", strings.Join(compare.Columns(), ","), "what to measure, comma-separated: strategies, and "+compare.CitusColumn+
		fmt.Sprintf(" (singleschema on a Citus coordinator and %d workers that compare starts on this machine and removes after; left out, saying so, when Citus is not installed, unless named here)", compare.CitusWorkers))
	generator := fs.String("generator", "auto", "load generator: wrk, builtin, or auto (wrk when it is installed)")
	quiet := fs.Bool("quiet", false, "print only where the report went")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	cfg, err := configs.Load(getenv)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	sizes, err := compareSizes(*tenants, o.Accounts, set["tenants"])
	if err != nil {
		return usageError{fmt.Errorf("compare: %w", err)}
	}
	o.Accounts = slices.Max(sizes)
	list, err := compareOptions(&o, *duration, *connections, *out, *names)
	if err != nil {
		return usageError{fmt.Errorf("compare: %w", err)}
	}
	if list, err = withCitus(list, set["strategies"], compare.CitusAvailable(), stdout); err != nil {
		return usageError{fmt.Errorf("compare: %w", err)}
	}
	if *zipf <= 0 || *zipf > 10 {
		return usageError{fmt.Errorf("compare: --zipf %g: want an exponent above 0 and at most 10, such as 1.1", *zipf)}
	}
	wrkPath, err := findWrk(*generator)
	if err != nil {
		return usageError{fmt.Errorf("compare: %w", err)}
	}
	cfg.Strategy.Logger = newLogger(stderr)
	if slices.Contains(list, strategy.MultiDB) {
		warnOfServer(ctx, stderr, "compare", cfg.Strategy, func(s pgsettings.Server) string { return s.MultiDBWarning(o.Accounts) })
	}
	messages := stdout
	if *quiet {
		messages = io.Discard
	}
	meter := progress.New(stdout, progress.ModeFor(stdout, *quiet), "accounts", "rows")
	rep, err := compare.Run(ctx, compare.Options{
		Base: cfg.Strategy, Seed: o, Sizes: sizes, Zipf: *zipf, Strategies: list, Duration: *duration, Connections: *connections,
		Server: execServer, Progress: messages, Seeding: seedMeter{meter}, Wrk: wrkPath,
	})
	meter.Finish()
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	md, html := *out+".md", *out+".html"
	if err := writeAtomically(md, func(w io.Writer) error { return compare.WriteMarkdown(w, rep) }); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := writeAtomically(html, func(w io.Writer) error { return compare.WriteHTML(w, rep) }); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	fmt.Fprintf(stdout, "compare: wrote %s and %s in %s\n", md, html, rep.Elapsed.Round(time.Second))
	for _, s := range rep.Strategies {
		if s.Probe.LeakedRows != 0 {
			return fmt.Errorf("compare: %s served %d rows of another tenant under load (see %s)", s.Name, s.Probe.LeakedRows, md)
		}
	}
	return nil
}

// compareSizes reads --tenants (or the older --accounts, when --tenants is
// not given) into the sizes to measure, ascending.
func compareSizes(tenants string, accounts int, tenantsSet bool) ([]int, error) {
	switch {
	case accounts != 0 && tenantsSet:
		return nil, errors.New("--accounts and --tenants say the same thing: give only --tenants")
	case accounts != 0:
		tenants = strconv.Itoa(accounts)
	}
	var sizes []int
	for _, f := range strings.Split(tenants, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--tenants %q: want whole numbers of at least 1, comma-separated, such as 10,100,1000", tenants)
		}
		if slices.Contains(sizes, n) {
			return nil, fmt.Errorf("--tenants %q: %d is given twice", tenants, n)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return sizes, nil
}

// compareOptions checks the flags and returns the strategies to measure.
func compareOptions(o *seed.Options, duration time.Duration, connections int, out, names string) ([]string, error) {
	var list []string
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(compare.Columns(), n) {
			return nil, fmt.Errorf("--strategies %q: want one or more of %s, comma-separated", names, strings.Join(compare.Columns(), ", "))
		}
		if slices.Contains(list, n) {
			return nil, fmt.Errorf("--strategies %q: %s is named twice", names, n)
		}
		list = append(list, n)
	}
	if duration < 100*time.Millisecond || duration > time.Hour {
		return nil, fmt.Errorf("--duration %s: want 100ms to 1h", duration)
	}
	if connections < 1 || connections > 1024 {
		return nil, fmt.Errorf("--connections %d: want 1 to 1024", connections)
	}
	if out == "" {
		return nil, errors.New("--out: want a path prefix such as report or /tmp/run1")
	}
	if st, err := os.Stat(filepath.Dir(out)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--out %s: the directory %s does not exist", out, filepath.Dir(out))
	}
	if o.Accounts > configs.MaxTenantCount && slices.Contains(list, strategy.MultiDB) {
		return nil, fmt.Errorf("--tenants %d: multidb makes a database per tenant; at most %d", o.Accounts, configs.MaxTenantCount)
	}
	for _, n := range list {
		tenants := 0
		if n == strategy.MultiDB {
			tenants = o.Accounts
		}
		if n == compare.CitusColumn {
			n = strategy.SingleSchema
		}
		if err := o.Validate(n, tenants); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// withCitus keeps the Citus column in list when Citus is installed
// (missing is nil). Otherwise it is an error when the user named it
// (named), and when it came with the default list it is left out, saying
// so in one line on w.
func withCitus(list []string, named bool, missing error, w io.Writer) ([]string, error) {
	if !slices.Contains(list, compare.CitusColumn) || missing == nil {
		return list, nil
	}
	if named {
		return nil, fmt.Errorf("--strategies names %s, but %v; `make citus` installs it", compare.CitusColumn, missing)
	}
	fmt.Fprintf(w, "compare: no %s column: %v (`make citus` installs it)\n", compare.CitusColumn, missing)
	return slices.DeleteFunc(slices.Clone(list), func(n string) bool { return n == compare.CitusColumn }), nil
}

// warnOfServer prints warn's warning about the PostgreSQL server of opts,
// if it has one: the settings scripts/ensure-postgres.sh no longer raises
// on a server it did not create. A server that cannot be read gets no
// warning here; the command's own connection fails next, and says why.
func warnOfServer(ctx context.Context, w io.Writer, cmd string, opts strategy.Options, warn func(pgsettings.Server) string) {
	s, err := pgsettings.Read(ctx, opts.AdminDSN("postgres"))
	if err != nil {
		return
	}
	if msg := warn(s); msg != "" {
		fmt.Fprintf(w, "%s: warning: %s\n", cmd, msg)
	}
}

// findWrk returns the path of wrk when the generator is to be wrk, or ""
// for the built-in one.
func findWrk(generator string) (string, error) {
	switch generator {
	case "builtin":
		return "", nil
	case "wrk", "auto":
		path, err := exec.LookPath("wrk")
		if err != nil && generator == "wrk" {
			return "", errors.New("--generator wrk: wrk is not installed (apt-get install wrk), or use --generator builtin")
		}
		return path, nil
	}
	return "", fmt.Errorf("--generator %q: want wrk, builtin or auto", generator)
}

// writeAtomically writes a file through a temporary one, so that a failure
// leaves no half-written report.
func writeAtomically(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := errors.Join(w.Flush(), f.Chmod(0o644), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}

// runMainEnv makes a test binary act as the tenancy command (see
// TestMain), so that execServer works from tests too.
const runMainEnv = "TENANCY_RUN_MAIN"

// serving is what serve prints once it listens.
var serving = regexp.MustCompile(` on (127\.0\.0\.1:\d+): `)

// execServer starts this binary's serve on a free loopback port with env,
// and returns once it listens.
func execServer(ctx context.Context, env []string) (*compare.Server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(env, runMainEnv+"=1")
	// Its own process group, so that Ctrl-C reaches compare only (which
	// stops the server when its loads are done), and SIGTERM should compare
	// itself die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	logs := &tailBuffer{max: 4096}
	cmd.Stderr = logs
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var once sync.Once
	var waitErr error
	wait := func() error { once.Do(func() { waitErr = cmd.Wait() }); return waitErr }
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- wait() }()
		select {
		case err := <-done:
			var exit *exec.ExitError
			if errors.As(err, &exit) && !exit.Exited() {
				return nil // stopped by the signal
			}
			return err
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			return fmt.Errorf("the server (pid %d) did not stop within 15s and was killed", cmd.Process.Pid)
		}
	}
	addr := make(chan string, 1)
	go func() {
		defer close(addr)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			if m := serving.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				// Keep reading, so that the server never blocks on a full
				// pipe.
				_, _ = io.Copy(io.Discard, pipe)
				return
			}
		}
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			wait()
			return nil, fmt.Errorf("the server exited before listening: %s", strings.TrimSpace(logs.String()))
		}
		return &compare.Server{URL: "http://" + a, PID: cmd.Process.Pid, Stop: stop}, nil
	case <-time.After(60 * time.Second):
		stop()
		return nil, fmt.Errorf("the server did not start listening within 60s: %s", strings.TrimSpace(logs.String()))
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
