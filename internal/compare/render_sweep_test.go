package compare

import (
	"html"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sweepTables are the tables of the markdown's "Many tenants" section,
// keyed by their first header cell, as unescaped cells, header first.
func sweepTables(t *testing.T, md string) map[string][][]string {
	t.Helper()
	_, rest, ok := strings.Cut(md, "\n## Many tenants\n")
	if !ok {
		t.Fatalf("WriteMarkdown: no Many tenants section in\n%s", md)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	tables := map[string][][]string{}
	var cur [][]string
	for _, line := range append(strings.Split(rest, "\n"), "") {
		switch {
		case strings.HasPrefix(line, "| ---"):
		case strings.HasPrefix(line, "| "):
			cur = append(cur, markdownCells(line))
		case len(cur) > 0:
			tables[cur[0][0]] = cur
			cur = nil
		}
	}
	return tables
}

// sweepRow is the strategy's row of the table headed by figure.
func sweepRow(t *testing.T, tables map[string][][]string, figure, strategy string) []string {
	t.Helper()
	table, ok := tables[figure]
	if !ok {
		t.Fatalf("WriteMarkdown: no table %q among %d", figure, len(tables))
	}
	for _, row := range table[1:] {
		if row[0] == strategy {
			return row[1:]
		}
	}
	t.Fatalf("WriteMarkdown: table %q has no row %q", figure, strategy)
	return nil
}

func TestSweepMarkdownTables(t *testing.T) {
	md := mustMarkdown(t, sweepReport())
	tables := sweepTables(t, md)
	for _, tc := range []struct {
		figure, strategy string
		want             []string // at 10, 100 and 1,000 tenants
	}{
		{"setup (create + migrate)", "multidb", []string{"2 s", "20 s", "5m0s"}},
		{"seed", "singleschema", []string{"900 ms", "6 s", "1m0s"}},
		{"database size", "multidb", []string{"90 MB", "800 MB", "8 GB"}},
		{"catalog entries (pg_class rows)", "multischema", []string{"810", "4,950", "46,350"}},
		{"no-op migrate", "singleschema", []string{"20 ms", "20 ms", "20 ms"}},
		{"schema change (00012_subtasks_priority.sql)", "multidb", []string{"400 ms", "4 s", "50 s"}},
		{"most held at once, over all loads", "multidb", []string{"30", "210", "250"}},
		{"during " + LoadZipf, "multidb", []string{"30", "200", "250"}},
		{"during " + LoadAllTenantsFirst, "multidb", []string{"n/a (skipped: " + allTenantsSkipped + ")", "n/a (skipped: " + allTenantsSkipped + ")", "n/a (skipped: " + allTenantsSkipped + ")"}},
		{"backends at the end of the loads", "multidb", []string{"30", "200", "250"}},
		{"private memory, total", "multischema", []string{"10 MB", "24 MB", "112 MB"}},
		{"private memory per backend", "multidb", []string{"2 MB", "2 MB", "3 MB"}},
		{"server RSS after the loads", "multidb", []string{"40 MB", "60 MB", "120 MB"}},
		{LoadAnyPage + ": throughput", "multidb", []string{"3,000 req/s", "2,000 req/s", "500 req/s"}},
		{LoadAnyPage + ": p50 / p99", "singleschema", []string{"1 ms / 5 ms", "1 ms / 5 ms", "1 ms / 6 ms"}},
		{LoadZipf + ": throughput", "multischema", []string{"2,500 req/s", "2,450 req/s", "2,300 req/s"}},
		{LoadZipf + ": p50 / p99", "multidb", []string{"2 ms / 8 ms", "2.5 ms / 15 ms", "5 ms / 60 ms"}},
		{"first request", "multidb", []string{"20 ms", "40 ms", "90 ms"}},
		{"the same request again", "multidb", []string{"2 ms", "2 ms", "3 ms"}},
		{"median / max latency", "multischema", []string{"20 ms / 30 ms", "120 ms / 200 ms", "900 ms / 1.2 s"}},
		{"tenants in the report", "multidb", []string{"10", "100", "997"}},
		{"tenants it could not reach", "multidb", []string{"0", "0", "3"}},
		{LoadZipf + ": connections opened, cache hits", "multidb", []string{"5.00/s opened, 99.00% hits", "200/s opened, 94.3% hits", "900/s opened, 90.0% hits"}},
		{LoadAnyPage + ": connections opened, cache hits", "singleschema", []string{"0.80/s opened, >99.99% hits", "0.90/s opened, >99.99% hits", "0.90/s opened, >99.99% hits"}},
		{"leaked rows", "multischema", []string{"0 — PASS", "0 — PASS", "0 — PASS"}},
	} {
		t.Run(tc.figure+"/"+tc.strategy, func(t *testing.T) {
			if got := sweepRow(t, tables, tc.figure, tc.strategy); strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
				t.Errorf("WriteMarkdown: table %q, row %s = %q, want %q", tc.figure, tc.strategy, got, tc.want)
			}
		})
	}
	for figure, table := range tables {
		if got, want := strings.Join(table[0][1:], ","), "10 tenants,100 tenants,1,000 tenants"; got != want {
			t.Errorf("WriteMarkdown: table %q header = %q, want %q", figure, got, want)
		}
		var names []string
		for _, row := range table[1:] {
			names = append(names, row[0])
			if len(row) != 4 {
				t.Errorf("WriteMarkdown: table %q row %q has %d cells, want 4", figure, row, len(row))
			}
		}
		if got, want := strings.Join(names, ","), strings.Join(sweepOrder, ","); got != want {
			t.Errorf("WriteMarkdown: table %q rows = %s, want %s", figure, got, want)
		}
	}
	for _, want := range []string{
		"\n## Detail at 1,000 tenants\n",
		"\n## Isolation probe at 1,000 tenants\n",
		"| " + LoadZipf + ": throughput | 1,200 req/s | 2,300 req/s | 4,100 req/s |",
		"Zipf parameter s = 1.1: ranking tenants by id, the tenant of rank k gets a share of requests proportional to 1/k^1.1",
		"the priority migration (a column with a default and an index on subtasks) to every tenant after seeding: 00012\\_subtasks\\_priority.sql.",
		"The cold tenant was tenant-cold at every size.",
		"It did all this at 10, 100 and 1,000 tenants",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("WriteMarkdown: no %q", want)
		}
	}
	if strings.Contains(md, "\n## Results\n") {
		t.Error("WriteMarkdown: the detail section of a 3-size sweep is titled Results, not by the size it shows")
	}
}

// TestSweepZipfShares: the note's shares follow from s and the number of
// tenants: with s = 1 over 4 tenants the weights are 1, 1/2, 1/3, 1/4.
func TestSweepZipfShares(t *testing.T) {
	top, tenth := zipfShares(4, 1)
	if want := 1 / (1 + 0.5 + 1.0/3 + 0.25); math.Abs(top-want) > 1e-9 || math.Abs(tenth-want) > 1e-9 {
		t.Errorf("zipfShares(4, 1) = %v, %v, want %v, %v", top, tenth, want, want)
	}
	if top, tenth := zipfShares(1000, 1.1); !(top > 0.17 && top < 0.19 && tenth > 0.7 && tenth < 0.8) {
		t.Errorf("zipfShares(1000, 1.1) = %v, %v, want about 0.18, 0.77", top, tenth)
	}
}

// Mutations of the fixture that leave a figure unset, as a run can.
func atSize(r *Report, size int, name string) *StrategyResult {
	for i := range r.Sweep {
		if r.Sweep[i].Tenants != size {
			continue
		}
		for j := range r.Sweep[i].Strategies {
			if r.Sweep[i].Strategies[j].Name == name {
				return &r.Sweep[i].Strategies[j]
			}
		}
	}
	panic("no " + name + " at this size in the fixture")
}

func withoutLoad(s *StrategyResult, kind string) {
	var kept []Load
	for _, l := range s.Loads {
		if l.Kind != kind {
			kept = append(kept, l)
		}
	}
	s.Loads = kept
}

func TestSweepMissingValues(t *testing.T) {
	for _, tc := range []struct {
		name             string
		mutate           func(r *Report)
		figure, strategy string
		want             []string
		// tip is a point that the chart whose caption starts with chart
		// must not draw.
		chart, tip string
	}{
		{"backend memory unreadable", func(r *Report) { atSize(r, 100, "singleschema").BackendPrivateKB = 0 },
			"private memory per backend", "singleschema", []string{"1 MB", "n/a (none open, or unreadable)", "2 MB"},
			"PostgreSQL backends'", "singleschema, per backend at 100 tenants"},
		{"no backends counted", func(r *Report) { atSize(r, 10, "multidb").Backends = 0 },
			"private memory per backend", "multidb", []string{"n/a (no backends counted)", "2 MB", "3 MB"},
			"PostgreSQL backends'", "multidb, per backend at 10 tenants"},
		{"setup not measured", func(r *Report) { atSize(r, 1000, "multidb").Setup = 0 },
			"setup (create + migrate)", "multidb", []string{"2 s", "20 s", "n/a"},
			"Setup and seed", "multidb, setup at 1,000 tenants"},
		{"Zipf load skipped", func(r *Report) {
			s := atSize(r, 10, "multischema")
			withoutLoad(s, LoadZipf)
			s.Skipped = map[string]string{LoadZipf: "held back"}
		}, LoadZipf + ": p50 / p99", "multischema", []string{"n/a (skipped: held back)", "2 ms / 10 ms", "2 ms / 12 ms"},
			"Tenant page latency, Zipf", "multischema, p99 at 10 tenants"},
		{"Zipf load not run", func(r *Report) { withoutLoad(atSize(r, 100, "multidb"), LoadZipf) },
			LoadZipf + ": throughput", "multidb", []string{"3,000 req/s", "n/a (not run)", "1,200 req/s"},
			"Tenant page throughput", "multidb, Zipf at 100 tenants"},
		{"load answered nothing", func(r *Report) {
			s := atSize(r, 100, "multidb")
			s.Loads[0] = Load{Kind: LoadAnyPage, Requests: 40, Failed: 40, Elapsed: 10 * time.Second}
		}, LoadAnyPage + ": p50 / p99", "multidb", []string{"2 ms / 9 ms", "n/a (no request answered OK)", "10 ms / 120 ms"},
			"Tenant page latency, uniform", "multidb, p50 at 100 tenants"},
		{"server side not measured", func(r *Report) { atSize(r, 1000, "multidb").Loads[1].Server = ServerActivity{} },
			LoadZipf + ": connections opened, cache hits", "multidb", []string{"5.00/s opened, 99.00% hits", "200/s opened, 94.3% hits", "n/a (not measured)"},
			"Connections opened", "multidb, Zipf at 1,000 tenants"},
		{"report failed", func(r *Report) { atSize(r, 1000, "multidb").Report = CrossTenantReport{Error: "deadline exceeded"} },
			"median / max latency", "multidb", []string{"30 ms / 60 ms", "300 ms / 500 ms", "n/a (failed: deadline exceeded)"},
			"Cross-tenant report", "multidb, median at 1,000 tenants"},
		{"report failed: counts say so briefly", func(r *Report) { atSize(r, 100, "multidb").Report = CrossTenantReport{Error: "deadline exceeded"} },
			"tenants in the report", "multidb", []string{"10", "n/a (failed)", "997"},
			"Cross-tenant report", "multidb, max at 100 tenants"},
		{"backends not read", func(r *Report) {
			s := atSize(r, 1000, "singleschema")
			s.Backends, s.BackendPrivateKB = 0, 0
		}, "backends at the end of the loads", "singleschema", []string{"8", "9", "n/a (none open, or unreadable)"},
			"PostgreSQL backends'", "singleschema, total at 1,000 tenants"},
		{"report not run", func(r *Report) { atSize(r, 10, "singleschema").Report = CrossTenantReport{} },
			"tenants it could not reach", "singleschema", []string{"n/a (not run)", "0", "0"},
			"Cross-tenant report", "singleschema, max at 10 tenants"},
		{"cold tenant not measured", func(r *Report) { atSize(r, 100, "multischema").ColdFirst = 0 },
			"first request", "multischema", []string{"8 ms", "n/a", "30 ms"},
			"A cold tenant", "multischema, first request at 100 tenants"},
		{"a strategy missing at one size", func(r *Report) {
			r.Sweep[0].Strategies = r.Sweep[0].Strategies[:2]
		}, "catalog entries (pg_class rows)", "singleschema", []string{"—", "400", "400"},
			"Catalog entries", "singleschema, catalog entries (pg_class rows) at 10 tenants"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sweepReport()
			tc.mutate(&r)
			md := mustMarkdown(t, r)
			if got := sweepRow(t, sweepTables(t, md), tc.figure, tc.strategy); strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
				t.Errorf("WriteMarkdown: table %q, row %s = %q, want %q", tc.figure, tc.strategy, got, tc.want)
			}
			many := section(md, "## Many tenants")
			for _, zero := range []string{"| 0 s |", "| 0 ms |", "| 0 req/s |", "| 0 B |"} {
				if strings.Contains(many, zero) {
					t.Errorf("WriteMarkdown: a missing figure shown as %q", zero)
				}
			}
			drawn := false
			for _, f := range sweepFiguresHTML(mustHTML(t, r)) {
				if !strings.HasPrefix(f.caption, tc.chart) {
					continue
				}
				drawn = true
				if svg := html.UnescapeString(f.svg); strings.Contains(svg, "<title>"+tc.tip) {
					t.Errorf("WriteHTML: chart %q draws a point for the missing figure %q", f.caption, tc.tip)
				} else if !strings.Contains(svg, "<desc>") || !strings.Contains(svg, "n/a") {
					t.Errorf("WriteHTML: chart %q's text alternative does not say a figure is n/a", f.caption)
				}
			}
			if !drawn {
				t.Errorf("WriteHTML: no chart %q", tc.chart)
			}
		})
	}
}

// sweepPlot is the frame of the sweep charts, worked out here rather than
// read from the code: the plot spans x 72 to 700 and y 36 to 264; the
// smallest and largest sizes sit 24 units in from its sides, and the
// bottom of a log axis 10 units above the x axis.
const (
	plotLeft, plotRight = 72.0 + 24, 700.0 - 24
	plotBottom, plotTop = 264.0 - 10, 36.0
)

// logX is where n tenants sit on a log axis from 10 to 1,000.
func logX(n float64) float64 {
	return plotLeft + (math.Log10(n)-1)/2*(plotRight-plotLeft)
}

// logY is where v sits on a log axis from lo to hi.
func logY(v, lo, hi float64) float64 {
	return plotBottom - math.Log10(v/lo)/math.Log10(hi/lo)*(plotBottom-plotTop)
}

// sweepFigureHTML is one chart of the page: its caption and SVG.
type sweepFigureHTML struct {
	caption, svg string
}

func sweepFiguresHTML(page string) []sweepFigureHTML {
	var out []sweepFigureHTML
	for _, part := range strings.Split(page, "<figure>")[1:] {
		caption, _, _ := strings.Cut(strings.TrimPrefix(part, "\n<figcaption>"), "</figcaption>")
		svg, _, _ := strings.Cut(part, "</figure>")
		if strings.Contains(caption, "against tenants") {
			out = append(out, sweepFigureHTML{html.UnescapeString(caption), svg})
		}
	}
	return out
}

var dotRE = regexp.MustCompile(`<circle class="dot [^"]*" cx="([\d.]+)" cy="([\d.]+)" r="3.5"><title>([^<]*)</title>`)

// dotAt is where the chart drew the point whose hover title is tip.
func dotAt(svg, tip string) (x, y float64, ok bool) {
	for _, m := range dotRE.FindAllStringSubmatch(svg, -1) {
		if html.UnescapeString(m[3]) == tip {
			x, _ = strconv.ParseFloat(m[1], 64)
			y, _ = strconv.ParseFloat(m[2], 64)
			return x, y, true
		}
	}
	return 0, 0, false
}

func TestSweepHTMLCharts(t *testing.T) {
	page := mustHTML(t, sweepReport())
	figs := sweepFiguresHTML(page)
	byTitle := map[string]string{}
	for _, f := range figs {
		byTitle[f.caption] = f.svg
	}
	const both, xOnly = " (log scale on both axes)", " (tenants on a log scale)"
	wantCharts := []string{
		"Setup and seed time against tenants" + both,
		"Database size against tenants" + both,
		"Catalog entries against tenants" + both,
		"Migrate time against tenants" + both,
		"PostgreSQL connections held under load against tenants" + both,
		"PostgreSQL backends' private memory against tenants" + both,
		"Server RSS after the loads against tenants" + xOnly, // 38 to 120 MB: not 10×
		"Tenant page throughput against tenants" + xOnly,     // 500 to 4,100 req/s
		"Tenant page latency, uniform traffic, against tenants" + both,
		"Tenant page latency, Zipf traffic, against tenants" + both,
		"A cold tenant's first and second request against tenants" + both,
		"Cross-tenant report latency against tenants" + both,
		"Connections opened per second of load against tenants" + both,
		"Cache hit ratio under load against tenants" + xOnly,
	}
	if len(figs) != len(wantCharts) {
		var got []string
		for _, f := range figs {
			got = append(got, f.caption)
		}
		t.Errorf("WriteHTML: %d sweep charts, want %d:\n%s", len(figs), len(wantCharts), strings.Join(got, "\n"))
	}
	for _, title := range wantCharts {
		svg, ok := byTitle[title]
		if !ok {
			t.Errorf("WriteHTML: no chart %q", title)
			continue
		}
		// The sizes are the x ticks, on a log axis: 100 halfway.
		for _, n := range []float64{10, 100, 1000} {
			tick := `x="` + svgCoord(logX(n)) + `" y="280.0" text-anchor="middle">` + groupDigits(int64(n)) + `</text>`
			if !strings.Contains(svg, tick) {
				t.Errorf("WriteHTML: chart %q has no x tick %s", title, tick)
			}
		}
		if !strings.Contains(svg, ">tenants (log scale)</text>") {
			t.Errorf("WriteHTML: chart %q does not say its x axis is a log scale", title)
		}
		// The x axis title says log scale; a log y axis's title says so too.
		wantLog := 1
		if strings.HasSuffix(title, both) {
			wantLog = 2
		}
		if got := strings.Count(svg, " (log scale)</text>"); got != wantLog {
			t.Errorf("WriteHTML: chart %q: %d axis titles say log scale, want %d", title, got, wantLog)
		}
		if !strings.Contains(svg, "<desc>") {
			t.Errorf("WriteHTML: chart %q has no text alternative (<desc>)", title)
		}
	}

	// Points where a log scale puts them: setup's axis runs from 200 ms to
	// 500 s (its end ticks), catalog's from 200 to 500,000 entries.
	for _, tc := range []struct {
		chart, tip string
		n, v       float64
		lo, hi     float64
		ticks      []string
	}{
		{wantCharts[0], "multidb, setup at 1,000 tenants: 5m0s", 1000, 300, 0.2, 500, []string{">200 ms<", ">500 s<", ">1 s<"}},
		{wantCharts[0], "singleschema, seed at 100 tenants: 6 s", 100, 6, 0.2, 500, nil},
		{wantCharts[2], "multischema, catalog entries (pg_class rows) at 10 tenants: 810", 10, 810, 200, 500_000, []string{">200<", ">500,000<", ">1,000<", ">100,000<"}},
		{wantCharts[2], "multidb, catalog entries (pg_class rows) at 100 tenants: 35,700", 100, 35_700, 200, 500_000, nil},
		{wantCharts[1], "multidb, database size at 1,000 tenants: 8 GB", 1000, 8 << 30, 5 << 20, 10 << 30, []string{">5 MB<", ">10 GB<", ">1 GB<"}},
	} {
		t.Run(tc.tip, func(t *testing.T) {
			svg := byTitle[tc.chart]
			x, y, ok := dotAt(svg, tc.tip)
			if !ok {
				t.Fatalf("WriteHTML: chart %q has no point titled %q", tc.chart, tc.tip)
			}
			if wx, wy := logX(tc.n), logY(tc.v, tc.lo, tc.hi); math.Abs(x-wx) > 0.11 || math.Abs(y-wy) > 0.11 {
				t.Errorf("WriteHTML: point %q at (%.1f, %.1f), want (%.1f, %.1f)", tc.tip, x, y, wx, wy)
			}
			for _, tick := range tc.ticks {
				if !strings.Contains(svg, tick) {
					t.Errorf("WriteHTML: chart %q has no tick %s", tc.chart, tick)
				}
			}
		})
	}

	// Colours: a strategy's series is its place in the detail section.
	if x, _, ok := dotAt(byTitle[wantCharts[0]], "multischema, setup at 10 tenants: 500 ms"); !ok || x != logX(10) {
		t.Errorf("WriteHTML: multischema's setup at 10 tenants not drawn at x %.1f", logX(10))
	}
	if !strings.Contains(byTitle[wantCharts[0]], `<circle class="dot s1" cx="`+svgCoord(logX(10))) {
		t.Error("WriteHTML: multischema's points are not series 1, the colour of its bars")
	}
	if desc := "multidb, setup: 2 s at 10 tenants, 20 s at 100 tenants, 5m0s at 1,000 tenants."; !strings.Contains(html.UnescapeString(byTitle[wantCharts[0]]), desc) {
		t.Errorf("WriteHTML: setup chart's text alternative has no %q", desc)
	}

	offline := strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, bad := range []string{"http://", "https://", "NaN", "Inf", "<script", "<link", "<img", "url("} {
		if strings.Contains(offline, bad) {
			t.Errorf("WriteHTML: output contains %q: not self-contained", bad)
		}
	}
	// Every cell of the sweep's tables is on the page too.
	text := html.UnescapeString(page)
	for figure, table := range sweepTables(t, mustMarkdown(t, sweepReport())) {
		for _, row := range table {
			for _, cell := range row {
				if !strings.Contains(text, cell) {
					t.Errorf("WriteHTML: no %q (table %q)", cell, figure)
				}
			}
		}
	}
}

// TestSweepOneSize: one size gives the tables with one column and no
// charts against the number of tenants; the detail keeps its title.
func TestSweepOneSize(t *testing.T) {
	r := sweepReport()
	r.Sweep = r.Sweep[2:]
	md := mustMarkdown(t, r)
	tables := sweepTables(t, md)
	if got := sweepRow(t, tables, "setup (create + migrate)", "multidb"); strings.Join(got, ",") != "5m0s" {
		t.Errorf("WriteMarkdown: one-size setup row = %q, want [5m0s]", got)
	}
	if got := strings.Join(tables["seed"][0], ","); got != "seed,1,000 tenants" {
		t.Errorf("WriteMarkdown: one-size header = %q", got)
	}
	for _, want := range []string{"\n## Results\n", "so there are no charts against the number of tenants"} {
		if !strings.Contains(md, want) {
			t.Errorf("WriteMarkdown: no %q", want)
		}
	}
	page := mustHTML(t, r)
	if figs := sweepFiguresHTML(page); len(figs) != 0 {
		t.Errorf("WriteHTML: %d charts against tenants from one size, want none", len(figs))
	}
	if !strings.Contains(page, "<h2>Many tenants</h2>") || !strings.Contains(page, "<h2>Results</h2>") {
		t.Error("WriteHTML: one-size sweep lost its Many tenants or Results section")
	}
}

// TestSweepDegenerate: shapes a run could produce must render, not panic.
func TestSweepDegenerate(t *testing.T) {
	emptySizes := Report{Sweep: []SizeRun{{Tenants: 10}, {Tenants: 100}}}
	unsorted := sweepReport()
	unsorted.Sweep[0], unsorted.Sweep[2] = unsorted.Sweep[2], unsorted.Sweep[0]
	allMissing := sweepReport()
	for i := range allMissing.Sweep {
		for j := range allMissing.Sweep[i].Strategies {
			allMissing.Sweep[i].Strategies[j] = StrategyResult{Name: allMissing.Sweep[i].Strategies[j].Name}
		}
	}
	for _, tc := range []struct {
		name   string
		r      Report
		charts int
	}{
		{"sizes with no strategies", emptySizes, 0},
		{"sizes out of order", unsorted, 14},
		{"every figure missing", allMissing, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := mustMarkdown(t, tc.r)
			page := mustHTML(t, tc.r)
			if got := len(sweepFiguresHTML(page)); got != tc.charts {
				t.Errorf("WriteHTML: %d sweep charts, want %d", got, tc.charts)
			}
			if strings.Contains(page, "NaN") || strings.Contains(page, "Inf") {
				t.Error("WriteHTML: NaN or Inf in the page")
			}
			if tc.name == "sizes out of order" {
				if got := strings.Join(sweepTables(t, md)["seed"][0], ","); got != "seed,10 tenants,100 tenants,1,000 tenants" {
					t.Errorf("WriteMarkdown: sizes not sorted: header %q", got)
				}
			}
		})
	}
}

// TestSweepZeroOnLogAxis: no connections opened is a figure, 0, which the
// table shows; a log axis cannot draw it, and the chart says so rather
// than dropping it silently or drawing it at the bottom.
func TestSweepZeroOnLogAxis(t *testing.T) {
	r := sweepReport()
	eachStrategy(&r, func(_ int, s *StrategyResult) {
		if s.Name == "singleschema" {
			for i := range s.Loads {
				s.Loads[i].Server.Sessions = 0
			}
		}
	})
	md := mustMarkdown(t, r)
	if got := sweepRow(t, sweepTables(t, md), LoadZipf+": connections opened, cache hits", "singleschema")[0]; got != "0/s opened, >99.99% hits" {
		t.Errorf("WriteMarkdown: no connections opened shown as %q, want 0/s", got)
	}
	for _, f := range sweepFiguresHTML(mustHTML(t, r)) {
		if !strings.HasPrefix(f.caption, "Connections opened per second") {
			continue
		}
		svg := html.UnescapeString(f.svg)
		if strings.Contains(svg, "<title>singleschema, ") || strings.Contains(svg, ">singleschema</text>") {
			t.Error("WriteHTML: singleschema's zeros drawn or named in the legend of a log chart")
		}
		if !strings.Contains(svg, ">0 not drawn: a log scale has no 0</text>") || !strings.Contains(svg, "Zero values cannot be drawn on a log scale") {
			t.Error("WriteHTML: the log chart does not say it left out zeros")
		}
		return
	}
	t.Error("WriteHTML: no chart of connections opened per second")
}
