package metrics

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"tenancy/strategy"
)

// fakeStrategy is a strategy that only has a name, and pools when given
// some; anything else it is asked panics.
type fakeStrategy struct {
	strategy.Strategy
	name string
}

func (f fakeStrategy) Name() string { return f.name }

type fakeWithPools struct {
	fakeStrategy
	pools []strategy.PoolStats
}

func (f fakeWithPools) PoolStats() []strategy.PoolStats { return f.pools }

func mustNew(t *testing.T, s strategy.Strategy) *Metrics {
	t.Helper()
	tenants, err := NewTopTenants(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(s, tenants)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scrape returns what m's handler serves, as series (name and labels, as
// the text format writes them) to values.
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", rec.Code, rec.Body)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

func TestNewRefusesNil(t *testing.T) {
	tenants, err := NewTopTenants(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(nil, tenants); err == nil {
		t.Error("New(nil strategy) succeeded, want an error")
	}
	if _, err := New(fakeStrategy{name: "fake"}, nil); err == nil {
		t.Error("New(nil top tenants) succeeded, want an error")
	}
	if _, err := NewTopTenants(nil); err == nil {
		t.Error("NewTopTenants(nil) succeeded, want an error")
	}
}

// TestPoolMetrics: each pool's figures, read at the scrape, as gauges and
// counters labelled by strategy and pool; none for a strategy that
// reports no pools.
func TestPoolMetrics(t *testing.T) {
	s := fakeWithPools{fakeStrategy: fakeStrategy{name: "fake"}}
	m := mustNew(t, &s)
	s.pools = []strategy.PoolStats{
		{Pool: "app", Open: 5, Idle: 3, InUse: 2, WaitCount: 7, WaitDuration: 1500 * time.Millisecond, Opened: 11, Closed: 6, Evictions: 4},
		{Pool: "reader", Open: 1, Idle: 1, Opened: 1},
	}
	got := scrape(t, m)
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`tenancy_db_pool_open_connections{pool="app",strategy="fake"}`, 5},
		{`tenancy_db_pool_idle_connections{pool="app",strategy="fake"}`, 3},
		{`tenancy_db_pool_in_use_connections{pool="app",strategy="fake"}`, 2},
		{`tenancy_db_pool_connection_waits_total{pool="app",strategy="fake"}`, 7},
		{`tenancy_db_pool_connection_wait_seconds_total{pool="app",strategy="fake"}`, 1.5},
		{`tenancy_db_pool_connections_opened_total{pool="app",strategy="fake"}`, 11},
		{`tenancy_db_pool_connections_closed_total{pool="app",strategy="fake"}`, 6},
		{`tenancy_db_pool_evictions_total{pool="app",strategy="fake"}`, 4},
		{`tenancy_db_pool_open_connections{pool="reader",strategy="fake"}`, 1},
		{`tenancy_db_pool_in_use_connections{pool="reader",strategy="fake"}`, 0},
	} {
		if v, ok := got[tt.series]; !ok || v != tt.want {
			t.Errorf("scrape: %s = %v (present %v), want %v", tt.series, v, ok, tt.want)
		}
	}
	// Read at each scrape, not once.
	s.pools[0].Open = 9
	if v := scrape(t, m)[`tenancy_db_pool_open_connections{pool="app",strategy="fake"}`]; v != 9 {
		t.Errorf("second scrape: app open = %v, want 9", v)
	}

	for k := range scrape(t, mustNew(t, fakeStrategy{name: "bare"})) {
		if strings.HasPrefix(k, "tenancy_db_pool_") {
			t.Errorf("strategy without PoolStats: scrape has %s", k)
		}
	}
}

// TestObserveRequest: a request moves the counter and the histogram of
// its route and status, and no other's.
func TestObserveRequest(t *testing.T) {
	m := mustNew(t, fakeStrategy{name: "fake"})
	m.ObserveRequest("/subtasks/:page/", 200, 3*time.Millisecond)
	m.ObserveRequest("/subtasks/:page/", 200, 30*time.Millisecond)
	m.ObserveRequest(UnmatchedRoute, 404, time.Millisecond)
	got := scrape(t, m)
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`tenancy_http_requests_total{route="/subtasks/:page/",status="200"}`, 2},
		{`tenancy_http_requests_total{route="unmatched",status="404"}`, 1},
		{`tenancy_http_request_duration_seconds_count{route="/subtasks/:page/",status="200"}`, 2},
		{`tenancy_http_request_duration_seconds_sum{route="/subtasks/:page/",status="200"}`, 0.033},
		{`tenancy_http_request_duration_seconds_bucket{route="/subtasks/:page/",status="200",le="0.002"}`, 0},
		{`tenancy_http_request_duration_seconds_bucket{route="/subtasks/:page/",status="200",le="0.005"}`, 1},
		{`tenancy_http_request_duration_seconds_bucket{route="/subtasks/:page/",status="200",le="0.05"}`, 2},
		{`tenancy_http_request_duration_seconds_bucket{route="unmatched",status="404",le="0.001"}`, 1},
	} {
		if v, ok := got[tt.series]; !ok || v < tt.want-1e-9 || v > tt.want+1e-9 {
			t.Errorf("scrape: %s = %v (present %v), want %v", tt.series, v, ok, tt.want)
		}
	}
	if _, ok := got[`tenancy_http_requests_total{route="/subtasks/:page/",status="404"}`]; ok {
		t.Error("scrape has a series for /subtasks/:page/ 404, which no request had")
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("scrape lacks the Go runtime's metrics (go_goroutines)")
	}
}

func TestStatusLabel(t *testing.T) {
	for _, status := range []int{200, 302, 400, 404, 405, 431, 500, 503} {
		if got := statusLabel(status); got != strconv.Itoa(status) {
			t.Errorf("statusLabel(%d) = %q, want %q", status, got, strconv.Itoa(status))
		}
	}
}

// BenchmarkObserveRequest is what measuring a request costs, from every P
// at once: a counter and a histogram of one route and status.
func BenchmarkObserveRequest(b *testing.B) {
	tenants, err := NewTopTenants(time.Now)
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(fakeStrategy{name: "fake"}, tenants)
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("/subtasks/:page/", http.StatusOK, 1200*time.Microsecond)
		}
	})
}
