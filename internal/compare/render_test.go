package compare

import (
	"bytes"
	"html"
	"strings"
	"testing"
	"time"
)

// sampleLoad is a load with every figure filled in, scaled by f so that
// two strategies differ.
func sampleLoad(kind string, f float64) Load {
	ms := func(v float64) time.Duration { return time.Duration(v * f * float64(time.Millisecond)) }
	l := Load{
		Kind:       kind,
		Target:     "tenant-1.localhost /subtasks/1/",
		Requests:   3000,
		OK:         3000,
		Elapsed:    10 * time.Second,
		Throughput: 300 / f,
		Latency:    Percentiles{P50: ms(1.2), P90: ms(2.5), P99: ms(9), Max: ms(20)},
		Raw:        Percentiles{P50: ms(1.1), P90: ms(2.2), P99: ms(4), Max: ms(15)},
		Histogram: Histogram{
			Bounds: []time.Duration{ms(0.5), ms(1), ms(2), ms(5), ms(10), ms(20)},
			Counts: []int{0, 900, 1500, 500, 90, 10},
		},
		PerSecond: []int{280, 300, 310, 305, 295, 300, 290, 300, 310, 310},
	}
	if kind == LoadMixed || kind == LoadBusyWriters || kind == LoadSpreadWriters {
		l.Reads = OpFigures{OK: 2700, PerSecond: 270 / f, Latency: Percentiles{P50: ms(1), P90: ms(2), P99: ms(8)}}
		l.Writes = OpFigures{OK: 300, PerSecond: 30 / f, Latency: Percentiles{P50: ms(3), P90: ms(6), P99: ms(15)}}
		l.Conflicts = 2
	}
	return l
}

func sampleStrategy(name string, f float64, reportedKinds []string) StrategyResult {
	s := StrategyResult{
		Name: name, Accounts: 20, Databases: 22,
		Setup: 7300 * time.Millisecond, Seed: 42 * time.Second, Rows: 1_234_567,
		DatabaseBytes: 345 << 20,
		ServerConns:   12, ConnBudget: 40,
		RSSBeforeKB: 40 << 10, RSSAfterKB: 43 << 10,
		Probe: Probe{Requests: 500, OK: 500, RowsChecked: 5000},
	}
	for _, k := range reportedKinds {
		s.Loads = append(s.Loads, sampleLoad(k, f))
	}
	return s
}

const allTenantsSkipped = "multidb has no all-tenants view"

func sampleReport() Report {
	tenantKinds := []string{LoadAnyPage, LoadFirstPage, LoadLastPage}
	multidb := sampleStrategy("multidb", 1.5, tenantKinds)
	multidb.Skipped = map[string]string{
		LoadAllTenantsFirst: allTenantsSkipped,
		LoadAllTenantsMid:   allTenantsSkipped,
		LoadAllTenantsLast:  allTenantsSkipped,
	}
	multidb.Loads[2].Latency.P99 *= 4 // a deep page much slower than the first
	multidb.OpenLimit = 60
	multidb.Loads[0].PerSecond = []int{150, 190, 210, 205, 200, 195, 210, 205, 200, 220, 215}
	single := sampleStrategy("singleschema", 1, LoadKinds())
	single.Databases = 1
	single.RSSAfterKB = 90 << 10
	return Report{
		Started:  time.Date(2026, 3, 1, 14, 5, 0, 0, time.UTC),
		Elapsed:  4*time.Minute + 12*time.Second,
		Options:  ReportOptions{Accounts: 20, Tenants: 20, Duration: 10 * time.Second, Connections: 16, PerPage: 10, SeedOptions: "--accounts 20 --subtasks_per_task 5"},
		Machine:  Machine{Cores: 8, CPU: "Example CPU <fast> | 3 GHz", MemoryMB: 16000, OS: "linux/amd64", GoVersion: "go1.26", PostgreSQL: "PostgreSQL 17.2", Generator: "built-in (Go, keep-alive)"},
		Checksum: "3f2a9c",

		Strategies: []StrategyResult{multidb, single},
	}
}

// edgeReport has one strategy, a load that answered nothing, and a load
// with no histogram or per-second counts: the inputs that divide by zero.
func edgeReport() Report {
	return Report{
		Strategies: []StrategyResult{{
			Name: "singleschema",
			Loads: []Load{
				{Kind: LoadAnyPage},
				{Kind: LoadFirstPage, Requests: 10, OK: 10, Throughput: 5, Latency: Percentiles{P50: time.Millisecond, P99: 2 * time.Millisecond}},
				{Kind: LoadLastPage, Requests: 4, Failed: 4},
			},
		}},
	}
}

// fastMultidbReport turns the sample round: the reading must follow the
// figures, not expect a winner.
func fastMultidbReport() Report {
	r := sampleReport()
	for i := range r.Strategies[0].Loads {
		r.Strategies[0].Loads[i].Throughput = 600
	}
	r.Strategies[0].ServerConns = 40
	return r
}

func leakyReport() Report {
	r := sampleReport()
	r.Strategies[1].Probe.LeakedRows = 3
	r.Strategies[1].Probe.Problems = []string{"tenant-2 saw subtask 17 of *tenant-3*"}
	return r
}

var renderCases = []struct {
	name     string
	report   Report
	strategy []string
	// contains are lines or fragments the markdown must have.
	contains []string
}{
	{
		name:     "two strategies",
		report:   sampleReport(),
		strategy: []string{"multidb", "singleschema"},
		contains: []string{
			"| leaked rows | 0 — PASS | 0 — PASS |",
			"- multidb: **PASS** — no row of another tenant among 5,000 rows checked in 500 requests.",
			"| " + LoadAllTenantsMid + ": throughput | skipped: " + allTenantsSkipped + " | 300 req/s |",
			"| " + LoadAnyPage + ": p50 / p90 / p99 | 1.8 ms / 3.75 ms / 13.5 ms (raw p99 6 ms) | 1.2 ms / 2.5 ms / 9 ms (raw p99 4 ms) |",
			"| last page / first page p99 | 4.0× | 1.0× |",
			"| server RSS before → after | 40.0 → 43.0 MB | 40.0 → 90.0 MB |",
			"| database size | 345 MB | 345 MB |",
			"| seed rate | 29,394 rows/s | 29,394 rows/s |",
			"- CPU: Example CPU \\<fast\\> \\| 3 GHz",
			`On the load "tenant page, any page", singleschema served 300 req/s against multidb's 200, 1.5× the throughput`,
			"Under multidb the server's memory stayed flat",
			"Under singleschema the server's memory grew by 50.0 MB",
			"the last page's p99 against the first page's: 4.0× under multidb; 1.0× under singleschema, within the noise. A ratio beyond the noise says a late page cost more in this run, not why.",
			"| PostgreSQL connections held under load | 12 (up to 60 open; 40 working at once) | 12 (40 working at once) |",
			"How this is read: figures whose ratio is within ±20% (0.83× to 1.2×) are taken as the same",
			"The isolation probe found no leaked rows under any strategy.",
			"| " + LoadMixed + ": reads / writes | — | 270 / 30.0 per s (2 stale, 412) |",
			"| " + LoadBusyWriters + ": writes p50 / p90 / p99 | — | 3 ms / 6 ms / 15 ms |",
		},
	},
	{
		name:     "multidb faster",
		report:   fastMultidbReport(),
		strategy: []string{"multidb", "singleschema"},
		contains: []string{
			`On the load "tenant page, any page", multidb served 600 req/s against singleschema's 300, 2.0× the throughput`,
			"multidb held up to 40 PostgreSQL connections open across 20 tenant databases, idle ones included, of the 60 it may keep open; its budget lets at most 40 work at once, across all tenants",
		},
	},
	{
		name:     "a leak",
		report:   leakyReport(),
		strategy: []string{"multidb", "singleschema"},
		contains: []string{
			"| leaked rows | 0 — PASS | 3 — FAIL |",
			"- singleschema: **FAIL** — 3 rows of another tenant were served, among 5,000 rows checked.",
			"  - tenant-2 saw subtask 17 of \\*tenant-3\\*",
			"Isolation FAILED: singleschema served 3 rows of another tenant.",
		},
	},
	{
		name:     "one strategy, empty loads",
		report:   edgeReport(),
		strategy: []string{"singleschema"},
		contains: []string{
			"| " + LoadAnyPage + ": throughput | 0 req/s (no requests) |",
			"| " + LoadAnyPage + ": p50 / p90 / p99 | — |",
			"| " + LoadLastPage + ": throughput | 0 req/s (4 of 4 failed) |",
			"| leaked rows | 0 — NOT RUN |",
			"Only one strategy ran",
		},
	},
	{name: "zero report"},
}

// figureLabels are the Results rows every report with strategies has.
var figureLabels = []string{
	"accounts", "databases", "setup + migrate", "seed", "rows seeded", "seed rate", "database size",
	"PostgreSQL connections held under load", "server RSS before → after",
}

func TestRenderMarkdown(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			md := mustMarkdown(t, tc.report)
			for _, h := range []string{"# tenancy compare", "\n## Machine\n", "\n## Results\n", "\n## Isolation probe\n", "\n## Reading the numbers\n", "\n### Trade-offs\n"} {
				if !strings.Contains(md, h) {
					t.Errorf("WriteMarkdown: no heading %q", strings.TrimSpace(h))
				}
			}
			for _, want := range tc.contains {
				if !strings.Contains(md, want) {
					t.Errorf("WriteMarkdown: no %q in\n%s", want, md)
				}
			}
			results := markdownTable(section(md, "## Results"))
			if len(tc.strategy) == 0 {
				return
			}
			if got, want := strings.Join(results[0], ","), "figure,"+strings.Join(tc.strategy, ","); got != want {
				t.Errorf("WriteMarkdown: results header = %q, want %q", got, want)
			}
			labels := map[string]bool{}
			for _, row := range results {
				if len(row) != 1+len(tc.strategy) {
					t.Errorf("WriteMarkdown: results row %q has %d cells, want %d", row, len(row), 1+len(tc.strategy))
				}
				labels[row[0]] = true
			}
			wantLabels := append([]string{}, figureLabels...)
			for _, kind := range reportedKinds(tc.report) {
				wantLabels = append(wantLabels, kind+": throughput", kind+": p50 / p90 / p99")
			}
			for _, l := range wantLabels {
				if !labels[l] {
					t.Errorf("WriteMarkdown: no results row %q", l)
				}
			}
		})
	}
}

func TestRenderHTML(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			page := mustHTML(t, tc.report)
			if got, want := strings.Contains(page, "<svg"), len(reportedKinds(tc.report)) > 0; got != want {
				t.Errorf("WriteHTML: a chart drawn = %v, want %v (charts only for loads that ran)", got, want)
			}
			offline := strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, "")
			for _, bad := range []string{"http://", "https://", "NaN", "Inf", "<script", "<link", "<img"} {
				if strings.Contains(offline, bad) {
					t.Errorf("WriteHTML: output contains %q", bad)
				}
			}
			// Every figure of the markdown, as text, is on the page too.
			text := html.UnescapeString(page)
			md := mustMarkdown(t, tc.report)
			for _, sec := range []string{"## Results", "## Isolation probe"} {
				for _, row := range markdownTable(section(md, sec)) {
					for _, cell := range row {
						if !strings.Contains(text, cell) {
							t.Errorf("WriteHTML: no %q (from the markdown's %s)", cell, sec)
						}
					}
				}
			}
		})
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	page := mustHTML(t, sampleReport())
	if strings.Contains(page, "<fast>") {
		t.Error("WriteHTML: CPU name <fast> written unescaped")
	}
}

func TestRenderDeterministic(t *testing.T) {
	r := sampleReport()
	if a, b := mustMarkdown(t, r), mustMarkdown(t, r); a != b {
		t.Error("WriteMarkdown: two renders of one report differ")
	}
	if a, b := mustHTML(t, r), mustHTML(t, r); a != b {
		t.Error("WriteHTML: two renders of one report differ")
	}
}

func TestRenderFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{500, "500 ns"},
		{840 * time.Microsecond, "840 µs"},
		{1234 * time.Microsecond, "1.23 ms"},
		{999_700 * time.Nanosecond, "1 ms"},
		{7300 * time.Millisecond, "7.3 s"},
		{92 * time.Second, "1m32s"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestRenderFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1536, "1.5 kB"},
		{345 << 20, "345 MB"},
		{3 << 40, "3 TB"},
		{5000 << 40, "5,000 TB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func mustMarkdown(t *testing.T, r Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatalf("WriteMarkdown: %v", err)
	}
	return b.String()
}

func mustHTML(t *testing.T, r Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return b.String()
}

// section is the markdown from heading up to the next heading of any
// level.
func section(md, heading string) string {
	_, rest, ok := strings.Cut(md, "\n"+heading+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "\n#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// markdownTable is the first table in md as unescaped cells, header first,
// without the alignment row.
func markdownTable(md string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "| ") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		if strings.HasPrefix(line, "| ---") {
			continue
		}
		rows = append(rows, markdownCells(line))
	}
	return rows
}

func markdownCells(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "| "), " |")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line):
			i++
			cell.WriteByte(line[i])
		case strings.HasPrefix(line[i:], " | "):
			cells = append(cells, cell.String())
			cell.Reset()
			i += 2
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, cell.String())
}
