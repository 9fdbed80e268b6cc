package loadcheck

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// Report writes r for a person: the counts, the latency percentiles, the
// failed answers by status and message, and the sampled problems.
func (r Result) Report(w io.Writer) {
	fmt.Fprintf(w, "requests      %d (%d ok, %d failed) in %s, %.0f/s\n",
		r.Requests, r.OK, r.Failed, r.Elapsed.Round(time.Millisecond), r.Throughput())
	fmt.Fprintf(w, "rows checked  %d\n", r.RowsChecked)
	fmt.Fprintf(w, "leaked rows   %d\n", r.LeakedRows)
	fmt.Fprintf(w, "mismatches    %d\n", r.Mismatches)
	fmt.Fprintf(w, "latency       p50 %s  p90 %s  p99 %s  max %s\n",
		round(r.Latency.P50), round(r.Latency.P90), round(r.Latency.P99), round(r.Latency.Max))
	if len(r.Answers) > 0 {
		fmt.Fprintln(w, "failed answers:")
		answers := make([]Answer, 0, len(r.Answers))
		for a := range r.Answers {
			answers = append(answers, a)
		}
		sort.Slice(answers, func(i, j int) bool { return r.Answers[answers[i]] > r.Answers[answers[j]] })
		for _, a := range answers {
			status := fmt.Sprint(a.Status)
			if a.Status == 0 {
				status = "no answer"
			}
			fmt.Fprintf(w, "  %6d x %s: %s\n", r.Answers[a], status, a.Message)
		}
	}
	for _, p := range r.Problems {
		if p.Kind != "failure" { // failures are summed up above
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
