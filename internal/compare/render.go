package compare

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// reportView is what both report formats show. It is computed once, as
// plain text, so that report.md and report.html cannot disagree on a
// figure; each renderer only escapes and lays it out.
type reportView struct {
	Title   string
	Summary string
	Machine []labelledValue
	// Sweep is the figures against the number of tenants; nil when the
	// run recorded no sweep.
	Sweep *sweepView
	// DetailTitle heads the single-size tables (Results), and AtSize
	// follows the headings of the other single-size sections: with a
	// sweep of several sizes they show the largest, and say so.
	DetailTitle string
	AtSize      string
	Results     textTable
	// CPU is where the time went on Citus, part by part; nil when no
	// load's CPU time was measured.
	CPU       *cpuView
	Probe     textTable
	Verdicts  []probeVerdict
	Reading   []string
	TradeOffs textTable
}

type labelledValue struct {
	Label, Value string
}

// textTable has a header row and rows of the same width; the first column
// names the figure and the others are one per strategy.
type textTable struct {
	Header []string
	Rows   [][]string
	// Words marks a table of sentences rather than figures: left-aligned,
	// where figures are right-aligned so that their digits line up.
	Words bool
}

// probeVerdict is one strategy's isolation outcome in words.
type probeVerdict struct {
	Strategy string
	Word     string // PASS, FAIL or NOT RUN
	Detail   string
	Problems []string
}

func newReportView(r Report) reportView {
	detail, at := detailTitles(r)
	return reportView{
		Title:       reportTitle(r),
		Summary:     reportSummary(r),
		Machine:     machineFacts(r.Machine),
		Sweep:       newSweepView(r),
		DetailTitle: detail,
		AtSize:      at,
		Results:     resultsTable(r),
		CPU:         newCPUView(r, at),
		Probe:       probeTable(r),
		Verdicts:    probeVerdicts(r),
		Reading:     readingOfNumbers(r),
		TradeOffs:   tradeOffTable(),
	}
}

// detailTitles name the size the single-size sections show when the
// sweep measured several: Report.Strategies are the largest size's.
func detailTitles(r Report) (detail, at string) {
	runs := sweepRuns(r)
	if len(runs) < 2 {
		return "Results", ""
	}
	at = " at " + tenantsLabel(runs[len(runs)-1].Tenants)
	return "Detail" + at, at
}

func reportTitle(r Report) string {
	names := strategyNames(r)
	if len(names) == 0 {
		return "tenancy compare"
	}
	return "tenancy compare: " + strings.Join(names, " vs ")
}

func strategyNames(r Report) []string {
	names := make([]string, len(r.Strategies))
	for i, s := range r.Strategies {
		names[i] = s.Name
	}
	return names
}

// dataShape is where strategy name keeps the run's accounts.
func dataShape(name string, o ReportOptions) string {
	switch {
	case o.Accounts <= 0:
		return ""
	case name == "singleschema":
		return fmt.Sprintf("%s accounts in one shared schema (singleschema)", humanCount(int64(o.Accounts)))
	case name == "multidb" && o.Tenants > 0:
		return fmt.Sprintf("%s tenants with a database each (multidb)", humanCount(int64(o.Tenants)))
	case name == "multischema":
		return fmt.Sprintf("%s tenants with a schema each in one database (multischema)", humanCount(int64(o.Accounts)))
	case name == CitusColumn:
		return fmt.Sprintf("%s accounts in one shared schema distributed over a Citus coordinator and %d workers on this machine (%s: singleschema on Citus)", humanCount(int64(o.Accounts)), CitusWorkers, CitusColumn)
	}
	return ""
}

func reportSummary(r Report) string {
	o := r.Options
	var data []string
	for _, s := range r.Strategies {
		if d := dataShape(s.Name, o); d != "" {
			data = append(data, d)
		}
	}
	var b strings.Builder
	if r.Started.IsZero() {
		b.WriteString("tenancy compare seeded ")
	} else {
		fmt.Fprintf(&b, "On %s, tenancy compare seeded ", r.Started.UTC().Format("2006-01-02 at 15:04 UTC"))
	}
	if len(data) == 0 {
		b.WriteString("the same data into each strategy")
	} else {
		b.WriteString("the same data into " + joinAnd(data))
	}
	if o.SeedOptions != "" {
		fmt.Fprintf(&b, ", with seed options %s", o.SeedOptions)
	}
	if r.Checksum != "" {
		fmt.Fprintf(&b, "; the seeded rows have checksum %s in every strategy", r.Checksum)
	}
	fmt.Fprintf(&b, ". It then loaded each page for %s with %d concurrent connections", humanDuration(o.Duration), o.Connections)
	if o.PerPage > 0 {
		fmt.Fprintf(&b, ", %d rows a page", o.PerPage)
	}
	if runs := sweepRuns(r); len(runs) > 1 {
		var sizes []string
		for _, run := range runs {
			sizes = append(sizes, humanCount(int64(run.Tenants)))
		}
		fmt.Fprintf(&b, ". It did all this at %s tenants, the detail below being the largest size's", joinAnd(sizes))
	}
	fmt.Fprintf(&b, ". The whole run, setup to teardown, took %s.", humanDuration(r.Elapsed))
	return b.String()
}

func machineFacts(m Machine) []labelledValue {
	known := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	memory := "unknown"
	if m.MemoryMB > 0 {
		memory = humanBytes(m.MemoryMB * 1024 * 1024)
	}
	cores := "unknown"
	if m.Cores > 0 {
		cores = fmt.Sprint(m.Cores)
	}
	maxConns := "unknown"
	if m.MaxConnections > 0 {
		maxConns = fmt.Sprint(m.MaxConnections)
	}
	facts := []labelledValue{
		{"Cores", cores},
		{"CPU", known(m.CPU)},
		{"Memory", memory},
		{"OS", known(m.OS)},
		{"Go", known(m.GoVersion)},
		{"PostgreSQL", known(m.PostgreSQL)},
		{"PostgreSQL max_connections", maxConns},
	}
	if m.Citus != "" {
		facts = append(facts, labelledValue{"Citus (the " + CitusColumn + " column)", m.Citus})
	}
	return append(facts, labelledValue{"Load generator", known(m.Generator)})
}

// noFigure fills a cell that has no figure; a reader tells it from zero.
const noFigure = "—"

// reportedKinds lists the Load kinds any strategy ran or skipped: the
// known ones in report order, then any others sorted, so output never
// depends on map order.
func reportedKinds(r Report) []string {
	seen := map[string]bool{}
	for _, s := range r.Strategies {
		for _, l := range s.Loads {
			seen[l.Kind] = true
		}
		for k := range s.Skipped {
			seen[k] = true
		}
	}
	var out []string
	for _, k := range LoadKinds() {
		if seen[k] {
			out = append(out, k)
			delete(seen, k)
		}
	}
	var extra []string
	for k := range seen {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// findLoad returns the strategy's first load of the kind.
func findLoad(s StrategyResult, kind string) (Load, bool) {
	i := slices.IndexFunc(s.Loads, func(l Load) bool { return l.Kind == kind })
	if i < 0 {
		return Load{}, false
	}
	return s.Loads[i], true
}

func resultsTable(r Report) textTable {
	t := textTable{Header: append([]string{"figure"}, strategyNames(r)...)}
	row := func(label string, cell func(StrategyResult) string) {
		cells := []string{label}
		for _, s := range r.Strategies {
			cells = append(cells, cell(s))
		}
		t.Rows = append(t.Rows, cells)
	}
	row("accounts", func(s StrategyResult) string { return humanCount(int64(s.Accounts)) })
	row("databases", func(s StrategyResult) string { return humanCount(int64(s.Databases)) })
	row("setup + migrate", func(s StrategyResult) string { return humanDuration(s.Setup) })
	row("seed", func(s StrategyResult) string { return humanDuration(s.Seed) })
	row("rows seeded", func(s StrategyResult) string { return humanCount(s.Rows) })
	row("seed rate", func(s StrategyResult) string { return humanRate(ratePerSecond(s.Rows, s.Seed)) + " rows/s" })
	row("database size", func(s StrategyResult) string { return humanBytes(s.DatabaseBytes) })
	row("PostgreSQL connections held under load", connectionsCell)
	row("server RSS before → after", rssCell)
	for _, kind := range reportedKinds(r) {
		row(kind+": throughput", func(s StrategyResult) string { return throughputCell(s, kind) })
		row(kind+": p50 / p90 / p99", func(s StrategyResult) string { return latencyCell(s, kind) })
		if anyWrites(r, kind) {
			row(kind+": reads / writes", func(s StrategyResult) string { return readsWritesCell(s, kind) })
			row(kind+": writes p50 / p90 / p99", func(s StrategyResult) string { return writeLatencyCell(s, kind) })
		}
	}
	if anyLastFirstRatio(r) {
		row("last page / first page p99", func(s StrategyResult) string {
			if v, ok := lastFirstRatio(s); ok {
				return humanRatio(v)
			}
			return noFigure
		})
	}
	return t
}

// connectionsCell shows connections held open beside the two limits that
// differ in kind: how many may be open, and how many work at once.
func connectionsCell(s StrategyResult) string {
	var limits []string
	if s.OpenLimit > 0 {
		limits = append(limits, fmt.Sprintf("up to %d open", s.OpenLimit))
	}
	if s.ConnBudget > 0 {
		limits = append(limits, fmt.Sprintf("%d working at once", s.ConnBudget))
	}
	if len(limits) == 0 {
		return fmt.Sprint(s.ServerConns)
	}
	return fmt.Sprintf("%d (%s)", s.ServerConns, strings.Join(limits, "; "))
}

func rssCell(s StrategyResult) string {
	if s.RSSBeforeKB <= 0 && s.RSSAfterKB <= 0 {
		return noFigure
	}
	return humanMB(s.RSSBeforeKB) + " → " + humanMB(s.RSSAfterKB) + " MB"
}

func throughputCell(s StrategyResult, kind string) string {
	l, ok := findLoad(s, kind)
	if !ok {
		if why := s.Skipped[kind]; why != "" {
			return "skipped: " + why
		}
		return noFigure
	}
	cell := humanRate(l.Throughput) + " req/s"
	switch {
	case l.Requests == 0:
		cell += " (no requests)"
	case l.Failed > 0:
		cell += fmt.Sprintf(" (%s of %s failed)", humanCount(int64(l.Failed)), humanCount(int64(l.Requests)))
	}
	return cell
}

// rawDiffers says when the uncorrected p99 is far enough from the
// corrected one to be worth showing: a factor of 1.5 either way means
// coordinated omission (or its correction) changed the picture.
func rawDiffers(corrected, raw float64) bool {
	if corrected <= 0 || raw <= 0 {
		return false
	}
	return corrected/raw >= 1.5 || raw/corrected >= 1.5
}

func latencyCell(s StrategyResult, kind string) string {
	l, ok := findLoad(s, kind)
	if !ok || l.OK == 0 {
		return noFigure
	}
	p := l.Latency
	cell := humanDuration(p.P50) + " / " + humanDuration(p.P90) + " / " + humanDuration(p.P99)
	if rawDiffers(float64(p.P99), float64(l.Raw.P99)) {
		cell += " (raw p99 " + humanDuration(l.Raw.P99) + ")"
	}
	return cell
}

// anyWrites says whether some strategy's load of the kind wrote.
func anyWrites(r Report, kind string) bool {
	for _, s := range r.Strategies {
		if l, ok := findLoad(s, kind); ok && l.Writes.OK+l.Writes.Failed > 0 {
			return true
		}
	}
	return false
}

func readsWritesCell(s StrategyResult, kind string) string {
	l, ok := findLoad(s, kind)
	if !ok || l.Writes.OK+l.Writes.Failed == 0 {
		return noFigure
	}
	cell := humanRate(l.Reads.PerSecond) + " / " + humanRate(l.Writes.PerSecond) + " per s"
	var notes []string
	if l.Writes.Failed > 0 {
		notes = append(notes, fmt.Sprintf("%s writes failed", humanCount(int64(l.Writes.Failed))))
	}
	if l.Conflicts > 0 {
		notes = append(notes, fmt.Sprintf("%s stale, 412", humanCount(int64(l.Conflicts))))
	}
	if len(notes) > 0 {
		cell += " (" + strings.Join(notes, ", ") + ")"
	}
	return cell
}

func writeLatencyCell(s StrategyResult, kind string) string {
	l, ok := findLoad(s, kind)
	if !ok || l.Writes.OK == 0 {
		return noFigure
	}
	p := l.Writes.Latency
	return humanDuration(p.P50) + " / " + humanDuration(p.P90) + " / " + humanDuration(p.P99)
}

func anyLastFirstRatio(r Report) bool {
	for _, s := range r.Strategies {
		if _, ok := lastFirstRatio(s); ok {
			return true
		}
	}
	return false
}

// lastFirstRatio is how much slower, at p99, the largest tenant's last
// page was than its first.
func lastFirstRatio(s StrategyResult) (float64, bool) {
	first, ok1 := findLoad(s, LoadFirstPage)
	last, ok2 := findLoad(s, LoadLastPage)
	if !ok1 || !ok2 || first.OK == 0 || last.OK == 0 || first.Latency.P99 <= 0 {
		return 0, false
	}
	return float64(last.Latency.P99) / float64(first.Latency.P99), true
}

func probeTable(r Report) textTable {
	t := textTable{Header: append([]string{"isolation probe"}, strategyNames(r)...)}
	row := func(label string, cell func(Probe) string) {
		cells := []string{label}
		for _, s := range r.Strategies {
			cells = append(cells, cell(s.Probe))
		}
		t.Rows = append(t.Rows, cells)
	}
	row("requests", func(p Probe) string { return humanCount(int64(p.Requests)) })
	row("rows checked", func(p Probe) string { return humanCount(p.RowsChecked) })
	row("leaked rows", func(p Probe) string { return humanCount(p.LeakedRows) + " — " + probeWord(p) })
	row("pages that disagreed with the seed", func(p Probe) string { return humanCount(int64(p.Mismatches)) })
	row("failed requests", func(p Probe) string { return humanCount(int64(p.Failed)) })
	return t
}

// probeWord judges only leaks: a probe that checked no rows proved
// nothing, so it neither passes nor fails.
func probeWord(p Probe) string {
	switch {
	case p.LeakedRows > 0:
		return "FAIL"
	case p.RowsChecked == 0:
		return "NOT RUN"
	default:
		return "PASS"
	}
}

func probeVerdicts(r Report) []probeVerdict {
	var out []probeVerdict
	for _, s := range r.Strategies {
		p := s.Probe
		v := probeVerdict{Strategy: s.Name, Word: probeWord(p), Problems: p.Problems}
		switch v.Word {
		case "FAIL":
			v.Detail = fmt.Sprintf("%s rows of another tenant were served, among %s rows checked.", humanCount(p.LeakedRows), humanCount(p.RowsChecked))
		case "NOT RUN":
			v.Detail = "the probe checked no rows, so it proves nothing either way."
		default:
			v.Detail = fmt.Sprintf("no row of another tenant among %s rows checked in %s requests.", humanCount(p.RowsChecked), humanCount(int64(p.Requests)))
		}
		if p.Mismatches > 0 || p.Failed > 0 {
			v.Detail += fmt.Sprintf(" %s pages disagreed with the seeded data and %s requests failed.", humanCount(int64(p.Mismatches)), humanCount(int64(p.Failed)))
		}
		out = append(out, v)
	}
	return out
}
