package handlers_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tenancy/handlers"
	"tenancy/internal/metrics"
	"tenancy/strategy"
)

// fakeClock is the top tenants' clock, moved by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(at time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(at.UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// do sends a request asking for JSON and returns its status.
func (a app) do(method, host, path string) int { return a.request(method, host, path).Code }

func (a app) request(method, host, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://placeholder"+path, nil)
	req.Host = host
	a.onBase(req)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

// scrapeMetrics GETs /metrics at the base domain and returns its series
// (name and labels as the text format writes them, labels in name order)
// and their values.
func scrapeMetrics(t *testing.T, a app) map[string]float64 {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Host = "localhost:8080"
	a.onBase(req)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("%s GET localhost /metrics = %d %s", a.name, rec.Code, rec.Header().Get("Content-Type"))
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
			t.Fatalf("%s /metrics line %q: %v", a.name, line, err)
		}
		series[line[:i]] = v
	}
	return series
}

type topTenantsBody struct {
	WindowSeconds int           `json:"window_seconds"`
	Requests      int           `json:"requests"`
	Exact         bool          `json:"exact"`
	Tenants       []tenantCount `json:"tenants"`
}

type tenantCount struct {
	Tenant   string `json:"tenant"`
	Requests int    `json:"requests"`
}

// TestMetrics drives requests through the router over each real strategy,
// then reads /metrics and /metrics/tenants: the request counts and
// latencies by route template and status, the strategy's pools, no tenant
// in any label, the busiest tenants of the last minute, and none of it at
// a tenant's address.
func TestMetrics(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			plain := newApp(t, name)
			clock := newFakeClock(time.Unix(1_000_000_000, 0))
			tenants, err := metrics.NewTopTenants(clock.now)
			if err != nil {
				t.Fatal(err)
			}
			m, err := metrics.New(plain.s, tenants)
			if err != nil {
				t.Fatal(err)
			}
			h, err := handlers.New(plain.s, handlers.Options{BaseDomain: "localhost", Metrics: m, AllowAnonymous: true})
			if err != nil {
				t.Fatal(err)
			}
			a := app{name: name, s: plain.s, h: h, operator: plain.operator}

			for _, r := range []struct {
				host, path string
				times      int
				want       int
			}{
				{"tenant-1.localhost:8080", "/subtasks/2/", 3, http.StatusOK},
				{"tenant-2.localhost:8080", "/subtasks/", 2, http.StatusOK},
				{"tenant-0.localhost:8080", "/subtasks/", 1, http.StatusOK},
				{"tenant-1.localhost:8080", "/subtasks/999/", 1, http.StatusNotFound}, // counts for tenant-1: it was found
				{"tenant-1.localhost:8080", "/nowhere", 1, http.StatusNotFound},       // no route: no tenant looked up
				{"tenant-99.localhost:8080", "/subtasks/", 1, http.StatusNotFound},    // no such tenant
			} {
				for range r.times {
					if got := a.do(http.MethodGet, r.host, r.path); got != r.want {
						t.Fatalf("GET %s%s = %d, want %d", r.host, r.path, got, r.want)
					}
				}
			}

			got := scrapeMetrics(t, a)
			for _, tt := range []struct {
				series string
				want   float64
			}{
				{`tenancy_http_requests_total{route="/subtasks/:page/",status="200"}`, 3},
				{`tenancy_http_requests_total{route="/subtasks/",status="200"}`, 3},
				{`tenancy_http_requests_total{route="/subtasks/:page/",status="404"}`, 1},
				{`tenancy_http_requests_total{route="/subtasks/",status="404"}`, 1},
				{`tenancy_http_requests_total{route="unmatched",status="404"}`, 1},
				{`tenancy_http_request_duration_seconds_count{route="/subtasks/:page/",status="200"}`, 3},
				{`tenancy_http_request_duration_seconds_bucket{route="/subtasks/:page/",status="200",le="+Inf"}`, 3},
				{`tenancy_http_request_duration_seconds_count{route="/subtasks/",status="200"}`, 3},
			} {
				if v, ok := got[tt.series]; !ok || v != tt.want {
					t.Errorf("%s: %s = %v (present %v), want %v", name, tt.series, v, ok, tt.want)
				}
			}
			if v := got[`tenancy_http_request_duration_seconds_sum{route="/subtasks/:page/",status="200"}`]; v <= 0 || v > 30 {
				t.Errorf("%s: 3 pages took %v s in all, by the histogram; want more than 0 and under 30", name, v)
			}
			// Every pool, and the one tenant pages are read on.
			pools, tenantPool := []string{"app", "reader"}, "app"
			if name == strategy.MultiDB {
				pools, tenantPool = []string{"base", "tenants"}, "tenants"
			}
			for _, pool := range pools {
				labels := `{pool="` + pool + `",strategy="` + name + `"}`
				for _, metric := range []string{"open_connections", "idle_connections", "in_use_connections", "connection_waits_total",
					"connection_wait_seconds_total", "connections_opened_total", "connections_closed_total", "evictions_total"} {
					if _, ok := got["tenancy_db_pool_"+metric+labels]; !ok {
						t.Errorf("%s: /metrics lacks tenancy_db_pool_%s%s", name, metric, labels)
					}
				}
			}
			if v := got[`tenancy_db_pool_connections_opened_total{pool="`+tenantPool+`",strategy="`+name+`"}`]; v < 1 {
				t.Errorf("%s: the %s pool opened %v connections for 6 tenant pages, want at least 1", name, tenantPool, v)
			}
			for series := range got {
				if labels, _, ok := strings.Cut(series[strings.IndexByte(series, '{')+1:], "}"); ok && strings.Contains(labels, "tenant-") {
					t.Errorf("%s: /metrics has a tenant in a label: %s", name, series)
				}
			}

			// The busiest tenants: only tenants found, busiest first.
			var top topTenantsBody
			rec := a.request(http.MethodGet, "localhost:8080", "/metrics/tenants?top=2")
			if rec.Code != http.StatusOK {
				t.Fatalf("%s GET /metrics/tenants?top=2 = %d %s", name, rec.Code, rec.Body)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &top); err != nil {
				t.Fatal(err)
			}
			want := topTenantsBody{WindowSeconds: 60, Requests: 7, Exact: true, Tenants: []tenantCount{{"tenant-1", 4}, {"tenant-2", 2}}}
			if !reflect.DeepEqual(top, want) {
				t.Errorf("%s GET /metrics/tenants?top=2 = %+v, want %+v", name, top, want)
			}
			clock.advance(61 * time.Second)
			top = topTenantsBody{}
			if err := json.Unmarshal(a.request(http.MethodGet, "localhost:8080", "/metrics/tenants").Body.Bytes(), &top); err != nil {
				t.Fatal(err)
			}
			if len(top.Tenants) != 0 || top.Requests != 0 {
				t.Errorf("%s GET /metrics/tenants a minute later = %+v, want no tenants", name, top)
			}

			for _, tt := range []struct {
				method, host, path string
				want               int
			}{
				{http.MethodGet, "tenant-1.localhost:8080", "/metrics", http.StatusNotFound},
				{http.MethodGet, "tenant-1.localhost:8080", "/metrics/tenants", http.StatusNotFound},
				{http.MethodHead, "tenant-1.localhost:8080", "/metrics", http.StatusNotFound},
				{http.MethodGet, "tenant-99.localhost:8080", "/metrics", http.StatusNotFound},
				{http.MethodGet, "evil.com", "/metrics", http.StatusBadRequest},
				{http.MethodGet, "127.0.0.1:8080", "/metrics", http.StatusBadRequest},
				{http.MethodHead, "localhost:8080", "/metrics", http.StatusOK},
				{http.MethodGet, "LOCALHOST.", "/metrics", http.StatusOK},
				{http.MethodGet, "localhost:8080", "/metrics/tenants?top=100", http.StatusOK},
				{http.MethodGet, "localhost:8080", "/metrics/tenants?top=0", http.StatusBadRequest},
				{http.MethodGet, "localhost:8080", "/metrics/tenants?top=101", http.StatusBadRequest},
				{http.MethodGet, "localhost:8080", "/metrics/tenants?top=ten", http.StatusBadRequest},
				{http.MethodPost, "localhost:8080", "/metrics", http.StatusMethodNotAllowed},
			} {
				if got := a.do(tt.method, tt.host, tt.path); got != tt.want {
					t.Errorf("%s %s %s%s = %d, want %d", name, tt.method, tt.host, tt.path, got, tt.want)
				}
			}
			// Without Metrics there is no such page, nor is anything counted.
			if got := plain.do(http.MethodGet, "localhost:8080", "/metrics"); got != http.StatusNotFound {
				t.Errorf("%s without Metrics: GET localhost /metrics = %d, want 404", name, got)
			}
		})
	}
}
