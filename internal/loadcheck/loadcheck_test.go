package loadcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// These tests check the checker against a stand-in server whose answers
// are chosen to be right or wrong; the real server is checked by the load
// tests in package strategy.

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://localhost:8080", true},
		{"http://[::1]:8080", true},
		{"https://127.0.0.2", true},
		{"http://example.com:8080", false},
		{"http://10.0.0.1:8080", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8080", false},
		{"", false},
	}
	for _, tt := range tests {
		_, err := CheckURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}

// standIn serves 3 pages of 10 rows per tenant; rows name the account
// given by owner(tenant, page).
func standIn(t *testing.T, owner func(tenant string, page int) string, status func(tenant string) int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, _, _ := strings.Cut(r.Host, ".")
		if st := status(tenant); st != http.StatusOK {
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"error":"down for %s","status":%d}`, tenant, st)
			return
		}
		n := 1
		fmt.Sscanf(r.URL.Path, "/subtasks/%d/", &n)
		p := page{Page: n, Pages: 3, Total: 30}
		for i := range 10 {
			p.Rows = append(p.Rows, row{ID: int64(n*100 + i), Name: fmt.Sprintf("s%d", i), Account: owner(tenant, n)})
		}
		_ = json.NewEncoder(w).Encode(p)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunCountsLeaksAndFailures(t *testing.T) {
	own := func(tenant string, _ int) string { return tenant }
	up := func(string) int { return http.StatusOK }
	tests := []struct {
		name       string
		owner      func(string, int) string
		status     func(string) int
		wantLeaked bool
		wantFailed bool
	}{
		{"every row its tenant's", own, up, false, false},
		{"page 2 of tenant-1 is tenant-0's", func(tenant string, page int) string {
			if tenant == "tenant-1" && page == 2 {
				return "tenant-0"
			}
			return tenant
		}, up, true, false},
		{"tenant-2 is down", own, func(tenant string) int {
			if tenant == "tenant-2" {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := standIn(t, tt.owner, tt.status)
			res, err := Run(context.Background(), Options{
				URL: srv.URL, BaseDomain: "localhost", Tenants: []string{"tenant-0", "tenant-1", "tenant-2"},
				Requests: 600, Concurrency: 4,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 600 {
				t.Errorf("Requests = %d, want 600", res.Requests)
			}
			if got := res.LeakedRows > 0; got != tt.wantLeaked {
				t.Errorf("LeakedRows = %d, want leaks: %v", res.LeakedRows, tt.wantLeaked)
			}
			if got := res.Failed > 0; got != tt.wantFailed {
				t.Errorf("Failed = %d, want failures: %v", res.Failed, tt.wantFailed)
			}
			if res.OK+res.Failed != res.Requests || res.RowsChecked != int64(res.OK*10) {
				t.Errorf("OK %d + Failed %d of %d requests, %d rows checked: counts do not add up", res.OK, res.Failed, res.Requests, res.RowsChecked)
			}
			if tt.wantFailed {
				if n := res.Answers[Answer{http.StatusServiceUnavailable, "down for tenant-2"}]; n != res.Failed || res.PerTenant["tenant-2"].Failed != n {
					t.Errorf("Answers = %v, PerTenant = %v, want every failure as 503 for tenant-2", res.Answers, res.PerTenant)
				}
			}
			if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
				t.Errorf("Latency = %+v, want 0 < p50 <= p99 <= max", res.Latency)
			}
		})
	}
}

func TestRunChecksExpectations(t *testing.T) {
	srv := standIn(t, func(tenant string, _ int) string { return tenant }, func(string) int { return http.StatusOK })
	names := map[string]int{}
	for i := range 10 {
		names[fmt.Sprintf("s%d", i)] = 3
	}
	res, err := Run(context.Background(), Options{
		URL: srv.URL, BaseDomain: "localhost", Tenants: []string{"tenant-0", "tenant-1"},
		Requests: 200, Concurrency: 2,
		Expect: map[string]Expectation{"tenant-0": {Total: 30, Names: names}, "tenant-1": {Total: 31}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mismatches == 0 || res.Mismatches != res.PerTenant["tenant-1"].OK {
		t.Errorf("Mismatches = %d, want one for every page of tenant-1 (%d), whose total is not 31", res.Mismatches, res.PerTenant["tenant-1"].OK)
	}
}

func TestRunRefusesOtherHosts(t *testing.T) {
	_, err := Run(context.Background(), Options{URL: "http://192.0.2.1:80", BaseDomain: "localhost", Tenants: []string{"tenant-0"}, Requests: 1})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Run against 192.0.2.1 = %v, want a refusal naming loopback", err)
	}
}

// TestRunSkewsTenantsByZipf: with Zipf set, the tenant of rank k gets a
// share of the requests near 1/k^s of the whole; without it, about equal.
func TestRunSkewsTenantsByZipf(t *testing.T) {
	own := func(tenant string, _ int) string { return tenant }
	srv := standIn(t, own, func(string) int { return http.StatusOK })
	tenants := make([]string, 20)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%d", i)
	}
	const requests = 20000
	for _, tc := range []struct {
		zipf float64
	}{{0}, {1.1}, {2}} {
		t.Run(fmt.Sprint(tc.zipf), func(t *testing.T) {
			res, err := Run(context.Background(), Options{
				URL: srv.URL, BaseDomain: "localhost", Tenants: tenants, Requests: requests, Concurrency: 4, Zipf: tc.zipf,
			})
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float64, len(tenants))
			for i := range want {
				want[i] = 1.0 / float64(len(tenants))
			}
			if tc.zipf > 0 {
				cdf := ZipfCDF(len(tenants), tc.zipf)
				for i := range want {
					want[i] = cdf[i]
					if i > 0 {
						want[i] -= cdf[i-1]
					}
				}
			}
			for i, slug := range tenants {
				got := float64(res.PerTenant[slug].Requests) / requests
				// Binomial noise: within 5 standard deviations.
				if tol := 5 * math.Sqrt(want[i]*(1-want[i])/requests); math.Abs(got-want[i]) > tol {
					t.Errorf("%s: %.4f of requests, want %.4f ± %.4f", slug, got, want[i], tol)
				}
			}
		})
	}
	if _, err := Run(context.Background(), Options{URL: srv.URL, BaseDomain: "localhost", Tenants: tenants, Requests: 1, Zipf: -1}); err == nil {
		t.Error("Zipf -1: no error")
	}
}

func TestZipfCDF(t *testing.T) {
	cdf := ZipfCDF(3, 1)
	// 1, 1/2, 1/3 of 11/6.
	want := []float64{6.0 / 11, 9.0 / 11, 1}
	for i := range want {
		if math.Abs(cdf[i]-want[i]) > 1e-12 {
			t.Errorf("ZipfCDF(3, 1)[%d] = %g, want %g", i, cdf[i], want[i])
		}
	}
}
