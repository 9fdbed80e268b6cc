// Package metrics is what a server tells its operator: the Prometheus
// exposition served at /metrics (requests by route and status, the
// strategy's connection pools, the Go runtime and the process) and the
// tenants with the most requests over the last minute (TopTenants). No
// metric has a tenant label: a thousand tenants would make every such
// metric a thousand series, so the busiest tenants are found through
// TopTenants instead.
//
// Each server has its own Metrics and its own prometheus.Registry, never
// the package-level default one, so that two servers in one process (the
// tests) count apart.
package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tenancy/strategy"
)

// namespace prefixes the names of the metrics of this package's own.
const namespace = "tenancy"

// UnmatchedRoute is the route label of requests no route matched (404s and
// 405s).
const UnmatchedRoute = "unmatched"

// durationBuckets are the request duration histogram's upper bounds, in
// seconds: a page takes about a millisecond when served warm, tens when
// PostgreSQL is busy or a connection must be opened, and up to the 10 s a
// request may spend in the database.
var durationBuckets = []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics holds one server's metrics.
type Metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	tenants   *TopTenants
	exposer   http.Handler
}

// New returns the metrics of a server over s, whose pools are reported
// when it implements strategy.PoolStatsReporter, counting tenants'
// requests in tenants.
func New(s strategy.Strategy, tenants *TopTenants) (*Metrics, error) {
	if s == nil {
		return nil, errors.New("metrics: strategy must not be nil")
	}
	if tenants == nil {
		return nil, errors.New("metrics: top tenants must not be nil")
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route template (" + UnmatchedRoute + " for none) and status code.",
		}, []string{"route", "status"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time from a request's arrival at the router to its answer, by route template and status code.",
			Buckets: durationBuckets,
		}, []string{"route", "status"}),
		tenants: tenants,
	}
	cs := []prometheus.Collector{
		m.requests, m.durations,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	if pools, ok := s.(strategy.PoolStatsReporter); ok {
		cs = append(cs, newPoolCollector(s.Name(), pools))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.exposer = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A collector that fails leaves out its own metrics, not all.
		ErrorHandling: promhttp.ContinueOnError,
		// promhttp_metric_handler_errors_total, in the same registry.
		Registry: reg,
	})
	return m, nil
}

// ObserveRequest counts one answered request of route (the route
// template, UnmatchedRoute for none), with its status and how long it
// took.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	code := statusLabel(status)
	m.requests.WithLabelValues(route, code).Inc()
	m.durations.WithLabelValues(route, code).Observe(d.Seconds())
}

// CountTenant counts one request for the tenant slug in the top tenants.
func (m *Metrics) CountTenant(slug string) { m.tenants.Add(slug) }

// TopTenants is the n tenants with the most requests over the last
// minute.
func (m *Metrics) TopTenants(n int) TopTenantsReport { return m.tenants.Top(n) }

// Handler serves the metrics in Prometheus's exposition formats.
func (m *Metrics) Handler() http.Handler { return m.exposer }

// statusLabel is status as a label value, without allocating for the
// statuses the server answers most.
func statusLabel(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case http.StatusFound:
		return "302"
	case http.StatusNotFound:
		return "404"
	case http.StatusServiceUnavailable:
		return "503"
	}
	return strconv.Itoa(status)
}
