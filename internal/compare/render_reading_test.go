package compare

import (
	"strings"
	"testing"
	"time"
)

// craftedLoad is a load of kind that ran for elapsed, answered ok requests
// at rate req/s, with the given p99.
func craftedLoad(kind string, elapsed time.Duration, ok int, rate float64, p99 time.Duration) Load {
	return Load{
		Kind: kind, Requests: ok, OK: ok, Elapsed: elapsed, Throughput: rate,
		Latency: Percentiles{P50: p99 / 4, P90: p99 / 2, P99: p99, Max: 2 * p99},
		Raw:     Percentiles{P50: p99 / 4, P90: p99 / 2, P99: p99, Max: 2 * p99},
	}
}

// pagesOf is a strategy whose loads all ran for elapsed with ok requests:
// the any-page load at rate req/s, the largest tenant's first page with
// p99 first and its last page with p99 last.
func pagesOf(name string, elapsed time.Duration, ok int, rate float64, first, last time.Duration) StrategyResult {
	return StrategyResult{Name: name, Accounts: 100, Loads: []Load{
		craftedLoad(LoadAnyPage, elapsed, ok, rate, first),
		craftedLoad(LoadFirstPage, elapsed, ok, rate, first),
		craftedLoad(LoadLastPage, elapsed, ok, rate, last),
	}}
}

func readingOf(t *testing.T, r Report) string {
	t.Helper()
	return section(mustMarkdown(t, r), "## Reading the numbers")
}

func checkReading(t *testing.T, r Report, want, not []string) {
	t.Helper()
	got := readingOf(t, r)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("reading has no %q:\n%s", w, got)
		}
	}
	for _, n := range not {
		if strings.Contains(got, n) {
			t.Errorf("reading says %q, which the figures do not support:\n%s", n, got)
		}
	}
}

const ms = time.Millisecond

// TestReadingNamesNoMechanism: the reading said "both strategies page with
// OFFSET, so a late page still walks past every row before it" next to a
// last/first p99 ratio of 0.9×. A ratio says how much slower, never why;
// and one within the noise says nothing at all.
func TestReadingNamesNoMechanism(t *testing.T) {
	long := 10 * time.Second
	for _, tc := range []struct {
		name       string
		strategies []StrategyResult
		want, not  []string
	}{
		{"one strategy much slower on its last page, the other not",
			[]StrategyResult{pagesOf("multidb", long, 30000, 3000, 10*ms, 47*ms), pagesOf("singleschema", long, 30000, 3100, 10*ms, 9*ms)},
			[]string{"4.7× under multidb", "0.9× under singleschema", "within"},
			[]string{"OFFSET", "walks past", "both strategies"}},
		{"both within the noise",
			[]StrategyResult{pagesOf("multidb", long, 30000, 3000, 10*ms, 11*ms), pagesOf("singleschema", long, 30000, 3100, 10*ms, 9*ms)},
			[]string{"within"},
			[]string{"OFFSET", "walks past"}},
		{"throughput 10% apart is noise",
			[]StrategyResult{pagesOf("multidb", long, 30000, 3000, 10*ms, 10*ms), pagesOf("singleschema", long, 30000, 3300, 10*ms, 10*ms)},
			[]string{"about the same throughput"},
			[]string{"1.1× the throughput"}},
		{"throughput 50% apart is not",
			[]StrategyResult{pagesOf("multidb", long, 30000, 2000, 10*ms, 10*ms), pagesOf("singleschema", long, 30000, 3000, 10*ms, 10*ms)},
			[]string{"1.5× the throughput"},
			[]string{"about the same throughput"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkReading(t, Report{Strategies: tc.strategies}, tc.want, tc.not)
		})
	}
}

// TestReadingShortLoads: one 65.7 ms p99 from a 5-second load was read as
// a 4.7× finding. A load too short to conclude from says so instead.
func TestReadingShortLoads(t *testing.T) {
	for _, tc := range []struct {
		name      string
		elapsed   time.Duration
		ok        int
		want, not []string
	}{
		{"5 seconds", 5 * time.Second, 25000, []string{"too short"}, []string{"4.7× under multidb", "1.5× the throughput"}},
		{"few requests", 20 * time.Second, 500, []string{"too short"}, []string{"4.7× under multidb", "1.5× the throughput"}},
		{"long enough", 10 * time.Second, 30000, []string{"4.7× under multidb", "1.5× the throughput"}, []string{"too short"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Report{Strategies: []StrategyResult{
				pagesOf("multidb", tc.elapsed, tc.ok, 2000, 14*ms, 65700*time.Microsecond),
				pagesOf("singleschema", tc.elapsed, tc.ok, 3000, 14*ms, 13*ms),
			}}
			checkReading(t, r, tc.want, tc.not)
		})
	}
}

// TestReadingConnections: "held up to 210 connections ... (its whole
// budget of 4)" compared connections held open with the budget of
// connections working at once.
func TestReadingConnections(t *testing.T) {
	for _, tc := range []struct {
		name      string
		s         StrategyResult
		want, not []string
	}{
		{"multidb holds far more open than work at once",
			StrategyResult{Name: "multidb", Accounts: 100, ServerConns: 210, ConnBudget: 4},
			[]string{"multidb held up to 210 PostgreSQL connections", "at most 4", "at once"},
			[]string{"whole budget", "budget of 4)", "(budget 4)"}},
		{"multidb on a server with too few connections",
			StrategyResult{Name: "multidb", Accounts: 100, ServerConns: 80, ConnBudget: 4, OpenLimit: 80},
			[]string{"all it may keep open (80)", "max\\_connections was 100, below the about 300", "held up to 80 connections for 100 tenants, fewer than the 2 per tenant"},
			[]string{"whole budget"}},
		{"multidb a little past its open limit",
			StrategyResult{Name: "multidb", Accounts: 3, ServerConns: 13, ConnBudget: 4, OpenLimit: 12},
			[]string{"held up to 13 PostgreSQL connections open", "above the 12 it may keep open"},
			[]string{"all it may keep open"}},
		{"singleschema",
			StrategyResult{Name: "singleschema", Accounts: 100, ServerConns: 8, ConnBudget: 4},
			[]string{"singleschema held up to 8 PostgreSQL connections", "at most 4", "at once"},
			[]string{"whole budget"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkReading(t, Report{Machine: Machine{MaxConnections: 100}, Strategies: []StrategyResult{tc.s}}, tc.want, tc.not)
			cell := markdownTable(section(mustMarkdown(t, Report{Strategies: []StrategyResult{tc.s}}), "## Results"))
			for _, row := range cell {
				if row[0] == "PostgreSQL connections held under load" && strings.Contains(row[1], "budget") {
					t.Errorf("connections cell %q calls the working budget a limit on connections held", row[1])
				}
			}
		})
	}
}
