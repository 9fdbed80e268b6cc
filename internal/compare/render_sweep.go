package compare

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// sweepView is the "Many tenants" section: each figure of the sweep as a
// table per measure (a row per strategy, a column per size) and, in HTML
// only, charts against the number of tenants. Like reportView it is plain
// text; the charts are kept as specs and drawn by the HTML renderer.
type sweepView struct {
	Intro   string
	Sizes   []int
	Figures []sweepFigure
	// ChartNote says why there are no charts, when there are none.
	ChartNote string
	Reading   []string
}

// sweepFigure is one heading of the section: a few tables of one kind of
// figure, the notes a reader needs to read them, and the charts of them.
type sweepFigure struct {
	Title  string
	Notes  []string
	Tables []textTable
	charts []sweepChartSpec
}

// valueKind says what a figure measures, and so how it is printed and on
// what kind of axis it is drawn.
type valueKind int

const (
	kindDuration  valueKind = iota // nanoseconds
	kindBytes                      // bytes
	kindCount                      // a number of things
	kindRate                       // requests per second
	kindPerSecond                  // events per second
	kindShare                      // a fraction in [0, 1]
)

// sweepValue is one cell: the figure, when there is one, and the text the
// table shows, which says why when there is none.
type sweepValue struct {
	V    float64
	OK   bool
	Text string
}

// knownValue is a cell with a figure.
func knownValue(v float64, text string) sweepValue { return sweepValue{V: v, OK: true, Text: text} }

// noValue is a cell with no figure: "n/a", with the reason when one is
// known. Never 0, which a reader would take for a measurement.
func noValue(reason string) sweepValue {
	if reason == "" {
		return sweepValue{Text: "n/a"}
	}
	return sweepValue{Text: "n/a (" + reason + ")"}
}

// sweepMeasure is one figure of a strategy at one size.
type sweepMeasure struct {
	Name  string // as a table's first header cell, and in a chart's key
	Kind  valueKind
	Value func(StrategyResult) sweepValue
}

// sweepRuns are the sweep's sizes, smallest first, whatever order the
// report holds them in.
func sweepRuns(r Report) []SizeRun {
	runs := slices.Clone(r.Sweep)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Tenants < runs[j].Tenants })
	return runs
}

// seriesNames are the strategies in the order that picks their colours:
// the detail section's order, so that a strategy has one colour on the
// whole page, then any strategy only the sweep has.
func seriesNames(r Report) []string {
	names := strategyNames(r)
	for _, run := range r.Sweep {
		for _, s := range run.Strategies {
			if !slices.Contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
	}
	return names
}

func strategyAt(run SizeRun, name string) (StrategyResult, bool) {
	i := slices.IndexFunc(run.Strategies, func(s StrategyResult) bool { return s.Name == name })
	if i < 0 {
		return StrategyResult{}, false
	}
	return run.Strategies[i], true
}

func tenantsLabel(n int) string {
	if n == 1 {
		return "1 tenant"
	}
	return humanCount(int64(n)) + " tenants"
}

// sweepTable is a measure at every size: a row per strategy, a column per
// size. A strategy that did not run at a size shows "—".
func sweepTable(runs []SizeRun, names []string, m sweepMeasure) textTable {
	t := textTable{Header: []string{m.Name}}
	for _, run := range runs {
		t.Header = append(t.Header, tenantsLabel(run.Tenants))
	}
	for _, name := range names {
		row := []string{name}
		seen := false
		for _, run := range runs {
			s, ok := strategyAt(run, name)
			if !ok {
				row = append(row, noFigure)
				continue
			}
			seen = true
			row = append(row, m.Value(s).Text)
		}
		if seen {
			t.Rows = append(t.Rows, row)
		}
	}
	return t
}

// Measures of one StrategyResult. Each says "n/a" rather than 0 when the
// run left the figure unset.

func durationValue(d time.Duration, reason string) sweepValue {
	if d <= 0 {
		return noValue(reason)
	}
	return knownValue(float64(d), humanDuration(d))
}

func setupValue(s StrategyResult) sweepValue { return durationValue(s.Setup, "") }
func seedValue(s StrategyResult) sweepValue  { return durationValue(s.Seed, "") }

func databaseSizeValue(s StrategyResult) sweepValue {
	if s.DatabaseBytes <= 0 {
		return noValue("")
	}
	return knownValue(float64(s.DatabaseBytes), humanBytes(s.DatabaseBytes))
}

func catalogValue(s StrategyResult) sweepValue {
	if s.CatalogEntries <= 0 {
		return noValue("")
	}
	return knownValue(float64(s.CatalogEntries), humanCount(s.CatalogEntries))
}

func noopMigrateValue(s StrategyResult) sweepValue { return durationValue(s.NoopMigrate, "") }
func schemaChangeValue(s StrategyResult) sweepValue {
	return durationValue(s.SchemaChange, s.SchemaChangeSkipped)
}

func serverConnsValue(s StrategyResult) sweepValue {
	if s.ServerConns <= 0 {
		return noValue("")
	}
	return knownValue(float64(s.ServerConns), humanCount(int64(s.ServerConns)))
}

// memoryUnread is why backend memory is missing. The run reports 0
// backends and 0 KiB both when none of the server's roles had a backend
// open and when /proc/<pid>/smaps_rollup could not be read (PostgreSQL on
// another machine, or as another user), so the reason names both.
const memoryUnread = "none open, or unreadable"

func backendsValue(s StrategyResult) sweepValue {
	if s.Backends <= 0 {
		return noValue(memoryUnread)
	}
	return knownValue(float64(s.Backends), humanCount(int64(s.Backends)))
}

func backendMemoryValue(s StrategyResult) sweepValue {
	if s.BackendPrivateKB <= 0 {
		return noValue(memoryUnread)
	}
	return knownValue(float64(s.BackendPrivateKB)*1024, humanBytes(s.BackendPrivateKB*1024))
}

func backendMemoryEachValue(s StrategyResult) sweepValue {
	switch {
	case s.BackendPrivateKB <= 0:
		return noValue(memoryUnread)
	case s.Backends <= 0:
		return noValue("no backends counted")
	}
	each := float64(s.BackendPrivateKB) * 1024 / float64(s.Backends)
	return knownValue(each, humanBytes(int64(math.Round(each))))
}

func serverRSSValue(s StrategyResult) sweepValue {
	if s.RSSAfterKB <= 0 {
		return noValue("")
	}
	return knownValue(float64(s.RSSAfterKB)*1024, humanBytes(s.RSSAfterKB*1024))
}

func coldFirstValue(s StrategyResult) sweepValue  { return durationValue(s.ColdFirst, "") }
func coldSecondValue(s StrategyResult) sweepValue { return durationValue(s.ColdSecond, "") }

// reportMissing is why the cross-tenant report has no latency, or "".
func reportMissing(c CrossTenantReport) string {
	switch {
	case c.Error != "":
		return "failed: " + c.Error
	case c.Runs <= 0:
		return "not run"
	}
	return ""
}

func reportLatencyValue(pick func(CrossTenantReport) time.Duration) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		if why := reportMissing(s.Report); why != "" {
			return noValue(why)
		}
		return durationValue(pick(s.Report), "")
	}
}

func reportLatenciesValue(s StrategyResult) sweepValue {
	if why := reportMissing(s.Report); why != "" {
		return noValue(why)
	}
	median, most := durationValue(s.Report.Median, ""), durationValue(s.Report.Max, "")
	return sweepValue{V: median.V, OK: median.OK, Text: median.Text + " / " + most.Text}
}

// reportCountValue is a count of the report's; a failure is only named,
// as the latency table beside it already gives the error.
func reportCountValue(pick func(CrossTenantReport) int) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		switch {
		case s.Report.Error != "":
			return noValue("failed")
		case s.Report.Runs <= 0:
			return noValue("not run")
		}
		n := pick(s.Report)
		return knownValue(float64(n), humanCount(int64(n)))
	}
}

// loadOf is the strategy's load of the kind, or why there is none.
func sweepLoad(s StrategyResult, kind string) (Load, sweepValue, bool) {
	if l, ok := findLoad(s, kind); ok {
		return l, sweepValue{}, true
	}
	if why := s.Skipped[kind]; why != "" {
		return Load{}, noValue("skipped: " + why), false
	}
	return Load{}, noValue("not run"), false
}

func throughputValue(kind string) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		l, none, ok := sweepLoad(s, kind)
		switch {
		case !ok:
			return none
		case l.Requests == 0:
			return noValue("no requests")
		}
		v := knownValue(finiteOrZero(l.Throughput), humanRate(l.Throughput)+" req/s")
		if l.Failed > 0 {
			v.Text += fmt.Sprintf(" (%s of %s failed)", humanCount(int64(l.Failed)), humanCount(int64(l.Requests)))
		}
		return v
	}
}

func latencyValue(kind string, pick func(Percentiles) time.Duration) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		l, none, ok := sweepLoad(s, kind)
		switch {
		case !ok:
			return none
		case l.OK == 0:
			return noValue("no request answered OK")
		}
		return durationValue(pick(l.Latency), "")
	}
}

func latenciesValue(kind string) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		p50 := latencyValue(kind, func(p Percentiles) time.Duration { return p.P50 })(s)
		if !p50.OK {
			return p50
		}
		p99 := latencyValue(kind, func(p Percentiles) time.Duration { return p.P99 })(s)
		return sweepValue{V: p50.V, OK: true, Text: p50.Text + " / " + p99.Text}
	}
}

// activityMeasured says whether PostgreSQL's side of a load was recorded at all:
// any load that ran touched some blocks, so all zeros means not measured.
func activityMeasured(a ServerActivity) bool {
	return a.Sessions > 0 || a.BlocksHit > 0 || a.BlocksRead > 0 || a.MostConns > 0
}

// serverOf is the load's ServerActivity, or why there is none.
func serverOf(s StrategyResult, kind string) (Load, sweepValue, bool) {
	l, none, ok := sweepLoad(s, kind)
	switch {
	case !ok:
		return l, none, false
	case !activityMeasured(l.Server):
		return l, noValue("not measured"), false
	}
	return l, sweepValue{}, true
}

func loadConnsValue(kind string) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		l, none, ok := serverOf(s, kind)
		if !ok {
			return none
		}
		if l.Server.MostConns <= 0 {
			return noValue("not sampled")
		}
		return knownValue(float64(l.Server.MostConns), humanCount(int64(l.Server.MostConns)))
	}
}

func opensPerSecondValue(kind string) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		l, none, ok := serverOf(s, kind)
		switch {
		case !ok:
			return none
		case l.Elapsed <= 0:
			return noValue("no elapsed time")
		}
		v := ratePerSecond(l.Server.Sessions, l.Elapsed)
		return knownValue(v, humanRate(v)+"/s")
	}
}

func hitRatioValue(kind string) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		l, none, ok := serverOf(s, kind)
		if !ok {
			return none
		}
		total := l.Server.BlocksHit + l.Server.BlocksRead
		if total <= 0 {
			return noValue("no blocks read")
		}
		v := float64(l.Server.BlocksHit) / float64(total)
		return knownValue(v, humanShare(v))
	}
}

// whereTimeGoesValue is a load's connections opened per second and cache
// hit ratio in one cell.
func whereTimeGoesValue(kind string) func(StrategyResult) sweepValue {
	return func(s StrategyResult) sweepValue {
		opens := opensPerSecondValue(kind)(s)
		if !opens.OK {
			return opens
		}
		text := opens.Text + " opened, "
		if hits := hitRatioValue(kind)(s); hits.OK {
			text += hits.Text + " hits"
		} else {
			text += "hit ratio " + hits.Text
		}
		return sweepValue{V: opens.V, OK: true, Text: text}
	}
}

func probeValue(s StrategyResult) sweepValue {
	return knownValue(float64(s.Probe.LeakedRows), humanCount(s.Probe.LeakedRows)+" — "+probeWord(s.Probe))
}

// humanShare prints a fraction as a percentage, with two decimals near
// 100% where cache hit ratios differ, and never rounds a miss away to
// 100%.
func humanShare(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case v >= 1:
		return "100%"
	case v >= 0.9999:
		return ">99.99%"
	case v >= 0.99:
		return fmt.Sprintf("%.2f%%", v*100)
	}
	return fmt.Sprintf("%.1f%%", v*100)
}

// sweepKinds are the Load kinds any strategy ran or skipped at any size,
// in report order.
func sweepKinds(runs []SizeRun) []string {
	var all []StrategyResult
	for _, run := range runs {
		all = append(all, run.Strategies...)
	}
	return reportedKinds(Report{Strategies: all})
}

func newSweepView(r Report) *sweepView {
	runs := sweepRuns(r)
	if len(runs) == 0 {
		return nil
	}
	names := seriesNames(r)
	v := &sweepView{Intro: sweepIntro(r, runs)}
	for _, run := range runs {
		v.Sizes = append(v.Sizes, run.Tenants)
	}
	kinds := sweepKinds(runs)
	for _, f := range sweepFigures(r, runs, kinds) {
		for _, ms := range f.measures {
			f.Tables = append(f.Tables, sweepTable(runs, names, ms))
		}
		if len(runs) < 2 {
			f.charts = nil
		}
		v.Figures = append(v.Figures, f.sweepFigure)
	}
	if len(runs) < 2 {
		v.ChartNote = fmt.Sprintf("Only one size was measured (%s), so there are no charts against the number of tenants: run compare with --tenants 10,100,1000 for them.", tenantsLabel(runs[0].Tenants))
	}
	v.Reading = sweepReading(r)
	return v
}

func sweepIntro(r Report, runs []SizeRun) string {
	var sizes []string
	for _, run := range runs {
		sizes = append(sizes, humanCount(int64(run.Tenants)))
	}
	var b strings.Builder
	if len(runs) == 1 {
		fmt.Fprintf(&b, "Every strategy was measured at %s.", tenantsLabel(runs[0].Tenants))
	} else {
		fmt.Fprintf(&b, "Every strategy was measured at %s tenants, each size on fresh databases seeded the same way.", joinAnd(sizes))
	}
	var sums []string
	for _, run := range runs {
		if run.Checksum != "" {
			sums = append(sums, fmt.Sprintf("%s at %s", run.Checksum, tenantsLabel(run.Tenants)))
		}
	}
	if len(sums) > 0 {
		fmt.Fprintf(&b, " Seeded data checksums, the same in every strategy at a size: %s.", strings.Join(sums, "; "))
	}
	b.WriteString(" Where a figure is missing its cell says n/a, with the reason when the run gave one; a strategy that did not run at a size shows —.")
	return b.String()
}

// figureSpec is a figure with the measures its tables show.
type figureSpec struct {
	sweepFigure
	measures []sweepMeasure
}

func sweepFigures(r Report, runs []SizeRun, kinds []string) []figureSpec {
	var out []figureSpec
	add := func(title string, notes []string, tables []sweepMeasure, charts ...sweepChartSpec) {
		out = append(out, figureSpec{sweepFigure{Title: title, Notes: notes, charts: charts}, tables})
	}

	setup := sweepMeasure{"setup (create + migrate)", kindDuration, setupValue}
	seed := sweepMeasure{"seed", kindDuration, seedValue}
	add("Setup and seed", nil, []sweepMeasure{setup, seed},
		sweepChartSpec{Title: "Setup and seed time against tenants", YTitle: "time", Kind: kindDuration, Metrics: []sweepMeasure{{"setup", kindDuration, setupValue}, {"seed", kindDuration, seedValue}}})

	size := sweepMeasure{"database size", kindBytes, databaseSizeValue}
	add("Database size", []string{"pg_database_size summed over every database the strategy uses."}, []sweepMeasure{size},
		sweepChartSpec{Title: "Database size against tenants", YTitle: "size", Kind: kindBytes, Metrics: []sweepMeasure{size}})

	catalog := sweepMeasure{"catalog entries (pg_class rows)", kindCount, catalogValue}
	add("Catalog size", []string{"pg_class rows (tables, indexes, sequences, TOAST tables, views, system catalogs) over the databases that hold tenant data (multidb: each tenant's, not its base and template): what each backend may have to cache, and what pg_dump and autovacuum walk."},
		[]sweepMeasure{catalog},
		sweepChartSpec{Title: "Catalog entries against tenants", YTitle: "pg_class rows", Kind: kindCount, Metrics: []sweepMeasure{catalog}})

	noop := sweepMeasure{"no-op migrate", kindDuration, noopMigrateValue}
	change := sweepMeasure{"schema change" + migrationSuffix(runs), kindDuration, schemaChangeValue}
	add("Migrations", []string{migrationNote(runs)}, []sweepMeasure{noop, change},
		sweepChartSpec{Title: "Migrate time against tenants", YTitle: "time", Kind: kindDuration,
			Metrics: []sweepMeasure{{"no-op migrate", kindDuration, noopMigrateValue}, {"schema change", kindDuration, schemaChangeValue}}})

	conns := []sweepMeasure{{"most held at once, over all loads", kindCount, serverConnsValue}}
	for _, k := range kinds {
		conns = append(conns, sweepMeasure{"during " + k, kindCount, loadConnsValue(k)})
	}
	add("PostgreSQL connections under load",
		[]string{"Connections the server's roles held open, idle ones included (pg_stat_activity, sampled): over all loads, then during each load."},
		conns,
		sweepChartSpec{Title: "PostgreSQL connections held under load against tenants", YTitle: "connections", Kind: kindCount,
			Metrics: []sweepMeasure{{"over all loads", kindCount, serverConnsValue}}})

	backends := sweepMeasure{"backends at the end of the loads", kindCount, backendsValue}
	total := sweepMeasure{"private memory, total", kindBytes, backendMemoryValue}
	each := sweepMeasure{"private memory per backend", kindBytes, backendMemoryEachValue}
	add("PostgreSQL backends' memory",
		[]string{"Private memory (Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup) of the backends serving the server's roles at the end of the loads, so not the shared buffers they touched; unreadable when PostgreSQL runs on another machine or as another user, and the run does not tell that apart from no backend open."},
		[]sweepMeasure{backends, total, each},
		sweepChartSpec{Title: "PostgreSQL backends' private memory against tenants", YTitle: "memory", Kind: kindBytes,
			Metrics: []sweepMeasure{{"total", kindBytes, backendMemoryValue}, {"per backend", kindBytes, backendMemoryEachValue}}})

	rss := sweepMeasure{"server RSS after the loads", kindBytes, serverRSSValue}
	add("Server memory", []string{"VmRSS of the tenancy server process after the last load."}, []sweepMeasure{rss},
		sweepChartSpec{Title: "Server RSS after the loads against tenants", YTitle: "memory", Kind: kindBytes, Metrics: []sweepMeasure{rss}})

	out = append(out, tenantPagesFigure(r, runs))

	first := sweepMeasure{"first request", kindDuration, coldFirstValue}
	second := sweepMeasure{"the same request again", kindDuration, coldSecondValue}
	add("A cold tenant", []string{coldNote(runs)}, []sweepMeasure{first, second},
		sweepChartSpec{Title: "A cold tenant's first and second request against tenants", YTitle: "latency", Kind: kindDuration, Metrics: []sweepMeasure{{"first request", kindDuration, coldFirstValue}, {"second", kindDuration, coldSecondValue}}})

	median := sweepMeasure{"median", kindDuration, reportLatencyValue(func(c CrossTenantReport) time.Duration { return c.Median })}
	maxLat := sweepMeasure{"max", kindDuration, reportLatencyValue(func(c CrossTenantReport) time.Duration { return c.Max })}
	add("Cross-tenant report", []string{reportNote(runs)},
		[]sweepMeasure{
			{"median / max latency", kindDuration, reportLatenciesValue},
			{"tenants in the report", kindCount, reportCountValue(func(c CrossTenantReport) int { return c.Tenants })},
			{"tenants it could not reach", kindCount, reportCountValue(func(c CrossTenantReport) int { return c.Unreachable })},
		},
		sweepChartSpec{Title: "Cross-tenant report latency against tenants", YTitle: "latency", Kind: kindDuration, Metrics: []sweepMeasure{median, maxLat}})

	var where []sweepMeasure
	for _, k := range kinds {
		where = append(where, sweepMeasure{k + ": connections opened, cache hits", kindPerSecond, whereTimeGoesValue(k)})
	}
	tenantKinds := []string{LoadAnyPage, LoadZipf}
	var opens, hits []sweepMeasure
	for _, k := range tenantKinds {
		if slices.Contains(kinds, k) {
			opens = append(opens, sweepMeasure{shortKind(k), kindPerSecond, opensPerSecondValue(k)})
			hits = append(hits, sweepMeasure{shortKind(k), kindShare, hitRatioValue(k)})
		}
	}
	add("Where the time goes", []string{
		"For each load, PostgreSQL's side of it over the strategy's databases (pg_stat_database differences): connections opened per second of the load (each a new backend, which must fork and load its catalog caches), and the share of block reads served from shared buffers rather than from the operating system.",
	}, where,
		sweepChartSpec{Title: "Connections opened per second of load against tenants", YTitle: "connections opened/s", Kind: kindPerSecond, Metrics: opens},
		sweepChartSpec{Title: "Cache hit ratio under load against tenants", YTitle: "cache hit ratio", Kind: kindShare, Metrics: hits})

	probe := sweepMeasure{"leaked rows", kindCount, probeValue}
	add("Isolation probe at each size", []string{"Rows served to a tenant that belonged to another, checked under load: 0 at every size is a pass."}, []sweepMeasure{probe})
	return out
}

// shortKind names the tenant-page loads in a chart key.
func shortKind(kind string) string {
	switch kind {
	case LoadAnyPage:
		return "uniform"
	case LoadZipf:
		return "Zipf"
	}
	return kind
}

// tenantPagesFigure is throughput and latency of the tenant-page loads,
// uniform and Zipf-skewed.
func tenantPagesFigure(r Report, runs []SizeRun) figureSpec {
	f := figureSpec{sweepFigure: sweepFigure{Title: "Tenant pages: uniform and Zipf traffic"}}
	f.Notes = append(f.Notes, fmt.Sprintf("%q picks a tenant uniformly at random for each request (every tenant equally busy) and a random page of it; %q picks tenants by a Zipf distribution. Latencies are as the load generator measures them (see Machine: the built-in one corrects for coordinated omission, wrk does not).", LoadAnyPage, LoadZipf))
	f.Notes = append(f.Notes, zipfNote(r.Options.Zipf, runs))
	p50 := func(p Percentiles) time.Duration { return p.P50 }
	p99 := func(p Percentiles) time.Duration { return p.P99 }
	var tput []sweepMeasure
	for _, k := range []string{LoadAnyPage, LoadZipf} {
		f.measures = append(f.measures,
			sweepMeasure{k + ": throughput", kindRate, throughputValue(k)},
			sweepMeasure{k + ": p50 / p99", kindDuration, latenciesValue(k)})
		tput = append(tput, sweepMeasure{shortKind(k), kindRate, throughputValue(k)})
	}
	f.charts = append(f.charts,
		sweepChartSpec{Title: "Tenant page throughput against tenants", YTitle: "req/s", Kind: kindRate, Metrics: tput})
	for _, k := range []string{LoadAnyPage, LoadZipf} {
		f.charts = append(f.charts, sweepChartSpec{Title: "Tenant page latency, " + shortKind(k) + " traffic, against tenants", YTitle: "latency", Kind: kindDuration,
			Metrics: []sweepMeasure{{"p50", kindDuration, latencyValue(k, p50)}, {"p99", kindDuration, latencyValue(k, p99)}}})
	}
	return f
}

// zipfShares are the shares of requests that the busiest tenant and the
// busiest tenth of n tenants get when rank k gets a share ∝ 1/k^s.
func zipfShares(n int, s float64) (top, topTenth float64) {
	if n <= 0 || !(s > 0) {
		return 0, 0
	}
	tenth := max(n/10, 1)
	var sum, head float64
	for k := 1; k <= n; k++ {
		w := math.Pow(float64(k), -s)
		sum += w
		if k <= tenth {
			head += w
		}
	}
	return 1 / sum, head / sum
}

func zipfNote(s float64, runs []SizeRun) string {
	if !(s > 0) {
		return "The Zipf parameter s was not recorded for this run."
	}
	note := fmt.Sprintf("Zipf parameter s = %s: ranking tenants by id, the tenant of rank k gets a share of requests proportional to 1/k^%s, so a few tenants are busy and most are nearly idle.", trimFloat(s), trimFloat(s))
	if len(runs) > 0 {
		n := runs[len(runs)-1].Tenants
		top, tenth := zipfShares(n, s)
		note += fmt.Sprintf(" At %s that gives the busiest tenant %s of the requests, and the busiest %s together %s.",
			tenantsLabel(n), humanShare(top), humanCount(int64(max(n/10, 1))), humanShare(tenth))
	}
	return note
}

func trimFloat(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// schemaChangeNames are the schema change's files, each with the
// strategies that ran it.
func schemaChangeNames(runs []SizeRun) (files []string, by map[string][]string) {
	by = map[string][]string{}
	for _, run := range runs {
		for _, s := range run.Strategies {
			if s.SchemaChangeName == "" {
				continue
			}
			if !slices.Contains(files, s.SchemaChangeName) {
				files = append(files, s.SchemaChangeName)
			}
			if !slices.Contains(by[s.SchemaChangeName], s.Name) {
				by[s.SchemaChangeName] = append(by[s.SchemaChangeName], s.Name)
			}
		}
	}
	return files, by
}

// migrationSuffix names the schema change's file in its table's header
// when every strategy ran the same one.
func migrationSuffix(runs []SizeRun) string {
	if files, _ := schemaChangeNames(runs); len(files) == 1 {
		return " (" + files[0] + ")"
	}
	return ""
}

func migrationNote(runs []SizeRun) string {
	note := "No-op migrate is migrate with nothing pending, over every tenant. The schema change is migrate applying the priority migration (a column with a default and an index on subtasks) to every tenant after seeding"
	files, by := schemaChangeNames(runs)
	switch len(files) {
	case 0:
		return note + "; the run did not record its file."
	case 1:
		return note + ": " + files[0] + "."
	}
	var parts []string
	for _, f := range files {
		parts = append(parts, fmt.Sprintf("%s (%s)", f, joinAnd(by[f])))
	}
	return note + ": " + strings.Join(parts, "; ") + "."
}

func coldNote(runs []SizeRun) string {
	note := "The first request for a tenant that no load and no warm-up visited, after the loads, then the same request again at once: one request each, so a single sample."
	var parts, all []string
	for _, run := range runs {
		var tenants []string
		for _, s := range run.Strategies {
			if s.ColdTenant != "" && !slices.Contains(tenants, s.ColdTenant) {
				tenants = append(tenants, s.ColdTenant)
			}
		}
		if len(tenants) > 0 {
			parts = append(parts, fmt.Sprintf("%s at %s", joinAnd(tenants), tenantsLabel(run.Tenants)))
		}
		for _, t := range tenants {
			if !slices.Contains(all, t) {
				all = append(all, t)
			}
		}
	}
	switch {
	case len(all) == 1 && len(parts) == len(runs) && len(runs) > 1:
		note += " The cold tenant was " + all[0] + " at every size."
	case len(parts) > 0:
		note += " The cold tenant was " + strings.Join(parts, "; ") + "."
	}
	return note
}

func reportNote(runs []SizeRun) string {
	note := "GET /reports/open-subtasks on the base domain: per tenant, its open subtasks and projects with any open subtask."
	runsDone := map[int]bool{}
	for _, run := range runs {
		for _, s := range run.Strategies {
			if s.Report.Runs > 0 {
				runsDone[s.Report.Runs] = true
			}
		}
	}
	if len(runsDone) == 1 {
		for n := range runsDone {
			note += fmt.Sprintf(" Timed %s times, one after another.", humanCount(int64(n)))
		}
	}
	return note + " Tenants it could not reach are those a multidb fan-out gave up on within its time budget."
}
