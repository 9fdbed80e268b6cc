package compare

import (
	"encoding/json"
	"testing"
	"time"
)

func TestWrkResultLoad(t *testing.T) {
	raw := `{"requests":1000,"duration_us":2000000,"connect":0,"read":2,"write":0,"status":10,"timeout":1,"max_us":9000,
		"percentiles":[[50,1000],[90,2000],[99,5000]]}`
	var r wrkResult
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatal(err)
	}
	l := r.load(LoadFirstPage, "x")
	ms := time.Millisecond
	if l.OK != 990 || l.Failed != 13 || l.Requests != 1003 || l.Throughput != 495 {
		t.Errorf("counts: OK %d failed %d requests %d throughput %v; want 990, 13, 1003, 495", l.OK, l.Failed, l.Requests, l.Throughput)
	}
	if want := (Percentiles{P50: ms, P90: 2 * ms, P99: 5 * ms, Max: 9 * ms}); l.Latency != want || l.Raw != want {
		t.Errorf("percentiles %+v, raw %+v; want %+v", l.Latency, l.Raw, want)
	}
	total := 0
	for _, n := range l.Histogram.Counts {
		total += n
	}
	if len(l.Histogram.Bounds) != 4 || len(l.Histogram.Counts) != 4 || total != 990 || l.Histogram.Counts[0] != 495 {
		t.Errorf("histogram %+v: want 4 buckets holding the 990 answered, half in the first", l.Histogram)
	}
}
