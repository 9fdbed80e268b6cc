package compare

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"tenancy/internal/loadcheck"
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

// TestWrkSkewsHostsByZipf runs wrk itself against a stand-in that counts
// the Host of each request: with a Zipf cdf the first host gets its share
// (for s = 2 over 10 hosts, about 65%), not a tenth.
func TestWrkSkewsHostsByZipf(t *testing.T) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wrk is not installed; `make test` installs it (apt-get install wrk)")
		}
		t.Skip("wrk is not installed")
	}
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.Host, ":")
		mu.Lock()
		hits[host]++
		mu.Unlock()
	}))
	defer srv.Close()
	hosts := make([]string, 10)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("tenant-%d.localhost", i)
	}
	cdf := loadcheck.ZipfCDF(len(hosts), 2)
	w := wrk{path: path, dir: t.TempDir()}
	l, err := w.run(context.Background(), LoadZipf, "zipf", srv.URL, target{hosts: hosts, pages: make([]int, len(hosts)), cdf: cdf}, time.Second, 4)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range hits {
		total += n
	}
	if total < 200 || l.OK == 0 {
		t.Fatalf("wrk sent %d requests (%d OK); too few to judge", total, l.OK)
	}
	for i, want := range []float64{cdf[0], cdf[1] - cdf[0]} {
		got := float64(hits[hosts[i]]) / float64(total)
		if tol := 5 * math.Sqrt(want*(1-want)/float64(total)); math.Abs(got-want) > tol {
			t.Errorf("%s: %.3f of %d requests, want %.3f ± %.3f", hosts[i], got, total, want, tol)
		}
	}
}

// TestWrkSendsEachHostItsCookie: each request carries the session of its
// own host's tenant, and a host given none gets no Cookie header (not the
// previous request's).
func TestWrkSendsEachHostItsCookie(t *testing.T) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wrk is not installed; `make test` installs it (apt-get install wrk)")
		}
		t.Skip("wrk is not installed")
	}
	hosts := []string{"tenant-0.localhost", "tenant-1.localhost", "tenant-2.localhost"}
	cookies := []string{"tenancy_session=zero", "tenancy_session=one", ""}
	want := map[string]string{}
	for i, h := range hosts {
		want[h] = cookies[i]
	}
	var mu sync.Mutex
	right, wrong := map[string]int{}, map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.Host, ":")
		mu.Lock()
		defer mu.Unlock()
		if got := r.Header.Get("Cookie"); got == want[host] {
			right[host]++
		} else {
			wrong[host] = got
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	w := wrk{path: path, dir: t.TempDir()}
	if _, err := w.run(context.Background(), LoadAnyPage, "any", srv.URL, target{hosts: hosts, cookies: cookies, pages: []int{1, 1, 1}}, time.Second, 4); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range hosts {
		if right[h] == 0 {
			t.Errorf("%s: no request with its cookie %q", h, want[h])
		}
	}
	for h, got := range wrong {
		t.Errorf("%s got Cookie %q, want %q", h, got, want[h])
	}
}
