package browsertest_test

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"tenancy/internal/browsertest"
	"tenancy/internal/compare"
)

// TestCompareReportRendersOffline opens a compare report.html from disk,
// as a reader does, and checks that every chart is drawn, that the page
// logs no error or warning, and that it asks the network for nothing: the
// report must be readable where it was copied, with no connection.
func TestCompareReportRendersOffline(t *testing.T) {
	t.Parallel()
	var page bytes.Buffer
	if err := compare.WriteHTML(&page, sweepReport()); err != nil {
		t.Fatal(err)
	}
	charts := strings.Count(page.String(), "<svg")
	if charts < 4 {
		t.Fatalf("the fixture's report has %d charts, want at least 4 (per-size and sweep charts)", charts)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fileURL := (&url.URL{Scheme: "file", Path: path}).String()

	tab := browsertest.Start(t).NewTab(t)
	tab.Run("open the report", chromedp.Navigate(fileURL), chromedp.WaitVisible(chromedp.CSS(`figure svg`)))
	tab.Screenshot("compare-report")

	type drawn struct {
		Title       string
		W, H        float64 // the chart's box on the page
		ContentW    float64 // what its shapes cover
		ContentH    float64
		Marks       int // bars, curves and dots
		VisibleMark bool
	}
	got := browsertest.Get(tab, "measure the charts", chromedp.Evaluate[[]drawn](`[...document.querySelectorAll("svg")].map(svg => {
		const box = svg.getBoundingClientRect(), content = svg.getBBox();
		const marks = [...svg.querySelectorAll("rect.bar, polyline.curve, circle.dot")];
		const painted = m => { const s = getComputedStyle(m); const b = m.getBBox();
			return (s.fill !== "none" || s.stroke !== "none") && s.visibility !== "hidden" && s.display !== "none" && (b.width > 0 || b.height > 0); };
		return {Title: svg.getAttribute("aria-label"), W: box.width, H: box.height, ContentW: content.width, ContentH: content.height,
			Marks: marks.length, VisibleMark: marks.some(painted)};
	})`))
	if len(got) != charts {
		t.Errorf("the browser finds %d charts, the page has %d", len(got), charts)
	}
	for _, c := range got {
		if c.W <= 0 || c.H <= 0 || c.ContentW <= 0 || c.ContentH <= 0 {
			t.Errorf("chart %q is drawn %gx%g with content %gx%g, want both non-zero", c.Title, c.W, c.H, c.ContentW, c.ContentH)
		}
		if c.Marks == 0 || !c.VisibleMark {
			t.Errorf("chart %q has %d bars, curves or dots, visible: %v; want some, painted", c.Title, c.Marks, c.VisibleMark)
		}
	}
	if p := tab.Problems(); len(p) > 0 {
		t.Errorf("the report logged problems:\n%s", strings.Join(p, "\n"))
	}
	for _, u := range tab.Requests() {
		if u != fileURL {
			t.Errorf("the report asked for %s: it must be self-contained", u)
		}
	}
}

// sweepReport is a compare report over two sizes (10 and 100 tenants)
// and the three strategies, with every figure the charts draw: the bars
// per strategy, throughput over time, latency distributions, and the
// figures against the number of tenants.
func sweepReport() compare.Report {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	load := func(kind string, rate, p99 float64) compare.Load {
		return compare.Load{
			Kind: kind, Target: "tenant-1.localhost /subtasks/1/",
			Requests: int(rate * 10), OK: int(rate * 10), Elapsed: 10 * time.Second, Throughput: rate,
			Latency: compare.Percentiles{P50: ms(p99 / 4), P90: ms(p99 / 2), P99: ms(p99), Max: ms(2 * p99)},
			Raw:     compare.Percentiles{P50: ms(p99 / 4), P90: ms(p99 / 2), P99: ms(p99 / 2), Max: ms(p99)},
			Histogram: compare.Histogram{
				Bounds: []time.Duration{ms(0.5), ms(1), ms(2), ms(5), ms(10), ms(20)},
				Counts: []int{0, 900, 1500, 500, 90, 10},
			},
			PerSecond: []int{280, 300, 310, 305, 295, 300, 290, 300, 310, 310},
			Server:    compare.ServerActivity{Sessions: 10, BlocksHit: 100_000, BlocksRead: 100, MostConns: 10},
		}
	}
	strategyAt := func(name string, tenants int, f float64) compare.StrategyResult {
		s := compare.StrategyResult{
			Name: name, Accounts: tenants, Databases: 1,
			Setup: time.Duration(f * float64(tenants) * float64(20*time.Millisecond)), Seed: time.Duration(tenants) * 50 * time.Millisecond,
			Rows: int64(tenants) * 1000, DatabaseBytes: int64(tenants) << 20, CatalogEntries: int64(400 + f*float64(tenants)*40),
			NoopMigrate: ms(20 * f), SchemaChange: ms(90 * f), SchemaChangeName: "00012_subtasks_priority.sql",
			Backends: 8, BackendPrivateKB: 8 * 1024,
			ColdTenant: "tenant-cold", ColdFirst: ms(3 * f), ColdSecond: ms(1),
			Report:      compare.CrossTenantReport{Runs: 5, Median: ms(5 * f), Max: ms(8 * f), Tenants: tenants},
			ServerConns: 8, ConnBudget: 16, RSSBeforeKB: 30 << 10, RSSAfterKB: 40 << 10,
			Probe: compare.Probe{Requests: 500, OK: 500, RowsChecked: 5000},
			Loads: []compare.Load{
				load(compare.LoadAnyPage, 4000/f, 5*f),
				load(compare.LoadZipf, 4100/f, 5*f),
				load(compare.LoadAllTenantsFirst, 2000/f, 10*f),
			},
		}
		if name == "multidb" {
			s.Databases = tenants + 2
			s.Loads = s.Loads[:2]
			s.Skipped = map[string]string{compare.LoadAllTenantsFirst: "multidb has no all-tenants view"}
		}
		return s
	}
	r := compare.Report{
		Started:  time.Date(2026, 3, 1, 14, 5, 0, 0, time.UTC),
		Elapsed:  25 * time.Minute,
		Options:  compare.ReportOptions{Sizes: []int{10, 100}, Zipf: 1.1, Accounts: 100, Tenants: 100, Duration: 10 * time.Second, Connections: 16, PerPage: 10, SeedOptions: "--accounts 100"},
		Machine:  compare.Machine{Cores: 2, CPU: "Example CPU", MemoryMB: 8000, OS: "linux/amd64", GoVersion: "go1.26", PostgreSQL: "PostgreSQL 17.2", MaxConnections: 300, Generator: "built-in"},
		Checksum: "c100",
	}
	for _, n := range []int{10, 100} {
		run := compare.SizeRun{Tenants: n, Checksum: fmt.Sprintf("c%d", n)}
		for i, name := range []string{"multidb", "multischema", "singleschema"} {
			run.Strategies = append(run.Strategies, strategyAt(name, n, float64(3-i)))
		}
		r.Sweep = append(r.Sweep, run)
	}
	r.Strategies = r.Sweep[len(r.Sweep)-1].Strategies
	return r
}
