package handlers

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"tenancy/internal/metrics"
	"tenancy/strategy"
)

// BenchmarkRouterMetrics is what measuring costs a request: the router
// over the in-memory strategy (no database, so only the handlers' own
// time), a tenant page as JSON, spread over 1,000 tenants, from every P
// at once, with and without Metrics.
func BenchmarkRouterMetrics(b *testing.B) {
	const tenants = 1000
	for _, on := range []bool{false, true} {
		b.Run("metrics="+strconv.FormatBool(on), func(b *testing.B) {
			s := &fakeStrategy{name: strategy.SingleSchema, tenants: tenants, rows: 25}
			o := Options{BaseDomain: "localhost", AllowAnonymous: true}
			if on {
				top, err := metrics.NewTopTenants(time.Now)
				if err != nil {
					b.Fatal(err)
				}
				if o.Metrics, err = metrics.New(s, top); err != nil {
					b.Fatal(err)
				}
			}
			h, err := New(s, o)
			if err != nil {
				b.Fatal(err)
			}
			hosts := make([]string, tenants)
			for i := range hosts {
				hosts[i] = strategy.Slug(i) + ".localhost"
			}
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "/subtasks/2/", nil)
					req.Host = hosts[i%tenants]
					req.Header.Set("Accept", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("GET %s/subtasks/2/ = %d", req.Host, rec.Code)
						return
					}
					i += 7
				}
			})
		})
	}
}
