package loadcheck

import (
	"testing"
	"time"
)

func TestCorrectedPercentiles(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		latencies []time.Duration
		interval  time.Duration
		want      Percentiles
	}{
		{"no stall: nothing added", []time.Duration{ms, ms, ms, ms}, ms, Percentiles{ms, ms, ms, ms}},
		// One 50 ms stall among fifty 1 ms answers: a steady client would
		// have sent 49 more requests meanwhile, waiting 49, 48, ..., 1 ms.
		// Raw, the stall is under 1% of the sample and p90 is 1 ms.
		{"one stall adds the requests it held back",
			append(repeat(ms, 50), 50*ms), ms,
			Percentiles{P50: ms, P90: 41 * ms, P99: 50 * ms, Max: 50 * ms}},
		{"no interval: raw", []time.Duration{3 * ms, ms, 2 * ms}, 0, Percentiles{2 * ms, 3 * ms, 3 * ms, 3 * ms}},
	}
	for _, tt := range tests {
		if got := CorrectedPercentiles(tt.latencies, tt.interval); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}
