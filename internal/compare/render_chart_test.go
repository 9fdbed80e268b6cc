package compare

import (
	"strings"
	"testing"
)

// TestHTMLDrawsNoChartWithoutData: with wrk, which gives no per-second
// counts, the page drew an empty "Throughput over time" chart.
func TestHTMLDrawsNoChartWithoutData(t *testing.T) {
	withCounts := sampleReport()
	wrkRun := sampleReport()
	for i := range wrkRun.Strategies {
		for j := range wrkRun.Strategies[i].Loads {
			wrkRun.Strategies[i].Loads[j].PerSecond = nil
		}
	}
	noHistogram := sampleReport()
	for i := range noHistogram.Strategies {
		for j := range noHistogram.Strategies[i].Loads {
			noHistogram.Strategies[i].Loads[j].Histogram = Histogram{}
		}
	}
	for _, tc := range []struct {
		name      string
		report    Report
		want, not []string
	}{
		{"per-second counts", withCounts,
			[]string{"<figcaption>Throughput over time", "<figcaption>Latency distribution: " + LoadAnyPage}, nil},
		{"wrk: no per-second counts", wrkRun,
			[]string{"<figcaption>Throughput per page", "<figcaption>Latency distribution: "},
			[]string{"<figcaption>Throughput over time", `class="note"`}},
		{"no histograms", noHistogram,
			[]string{"<figcaption>Throughput over time"},
			[]string{"<figcaption>Latency distribution", `class="note"`}},
		{"no loads", Report{Strategies: []StrategyResult{{Name: "singleschema"}}},
			nil,
			[]string{"<svg", `class="note"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := mustHTML(t, tc.report)
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("WriteHTML: no %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(page, n) {
					t.Errorf("WriteHTML: %q drawn without data", n)
				}
			}
		})
	}
}
