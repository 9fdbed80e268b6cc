// Package loadcheck fires concurrent requests for randomly mixed tenants at
// a running tenancy server and checks that every row served to a tenant is
// that tenant's own. It is the isolation probe behind `tenancy loadcheck`
// and a load generator for anything that needs throughput and latency
// percentiles: a fixed number of workers share one keep-alive HTTP client,
// and a run returns a structured Result rather than printing.
//
// It only talks to loopback addresses: it is a test tool, not a way to load
// someone else's server.
package loadcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options describe one run.
type Options struct {
	// URL is where the server listens, e.g. http://127.0.0.1:8080; it must
	// be a loopback address (or localhost).
	URL string
	// BaseDomain: tenant slug s is addressed with the Host header
	// s.<BaseDomain>, plus the port of URL.
	BaseDomain string
	// Tenants are the slugs to mix, each request picking one at random:
	// uniformly, or by Zipf's law when Zipf is set.
	Tenants []string
	// Zipf, when above 0, skews the choice of tenant as real traffic is
	// skewed: the tenant of rank k (its place in Tenants, from 1) is asked
	// for in proportion to 1/k^Zipf, so a few tenants are busy and most
	// are nearly idle. 0 picks tenants uniformly.
	Zipf float64
	// Requests is how many requests to send; 0 means until ctx is done.
	Requests int
	// Concurrency is the number of requests in flight (16 when zero).
	Concurrency int
	// Seed makes the sequence of tenants and pages each worker asks for
	// repeatable (1 when zero).
	Seed uint64
	// Expect, when it has an entry for a tenant, is checked against every
	// page served to it; tenants without one are checked for a total that
	// stays what it was on their first answer.
	Expect map[string]Expectation
	// Client sends the requests; NewClient(Concurrency) when nil.
	Client *http.Client
	// RequestTimeout bounds one request (30s when zero).
	RequestTimeout time.Duration
	// Samples is how many problems of each kind Result keeps (10 when zero).
	Samples int
	// Page, when set, is the only page asked for (else pages are random).
	Page int
	// AllTenants sends every request to the base domain itself (the
	// all-tenants view) instead of to Tenants; rows of any tenant are
	// expected there, so only failures and totals are checked.
	AllTenants bool
	// Sessions holds each tenant's Cookie header (see SignIn), sent with
	// every request for that tenant; the key "" is the base domain's, for
	// AllTenants. A tenant without one is asked for with no cookie.
	Sessions map[string]string
	// Writes is the share of a worker's turns spent writing through the
	// JSON API instead of reading a page (see write): 0 reads only, 0.1
	// is the mixed load, 1 writes only. Totals then move, so they are not
	// checked (Expect must be nil); leaks still are.
	Writes float64
}

// Expectation is what a tenant's subtask list should hold.
type Expectation struct {
	// Total is the number of subtasks.
	Total int
	// Names counts the subtasks by name; nil skips the check.
	Names map[string]int
}

// Result is what a run saw.
type Result struct {
	// Requests were answered or failed (requests cut short by the end of
	// the run are not counted).
	Requests int
	// OK were answered 200 with a well-formed page.
	OK int
	// RowsChecked is the number of rows whose tenant was checked.
	RowsChecked int64
	// LeakedRows belonged to a tenant other than the one in the request's
	// Host header.
	LeakedRows int64
	// Mismatches are pages whose rows or total disagree with the
	// expectation (see Options.Expect): wrong data, though not another
	// tenant's.
	Mismatches int
	// Failed got a status other than 200, no answer, or a malformed page.
	Failed int
	// Answers counts the failed requests by status and message (status 0:
	// no HTTP answer).
	Answers map[Answer]int
	// PerTenant breaks the counts down by tenant slug.
	PerTenant map[string]TenantResult
	// Problems are the first few leaks, failures and mismatches, for a
	// report.
	Problems []Problem
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
	// Latency is over the requests answered OK.
	Latency Percentiles
	// Corrected is Latency corrected for coordinated omission (see
	// CorrectedPercentiles).
	Corrected Percentiles
	// Latencies of the requests answered OK, sorted.
	Latencies []time.Duration
	// PerSecond counts the requests answered OK in each second of the run.
	PerSecond []int
	// Reads (page GETs, and the API GETs a toggle reads its ETag with)
	// and Writes (PATCH, POST, DELETE) break the requests down.
	Reads, Writes OpStats
	// Conflicts are writes answered 412 Precondition Failed: the subtask
	// changed since its ETag was read, and nothing was written.
	Conflicts int
}

// TenantResult is one tenant's share of a Result.
type TenantResult struct {
	Requests, OK, Failed int
	LeakedRows           int64
}

// Answer is a failed request's status and the message it carried.
type Answer struct {
	Status  int
	Message string
}

// Problem is one thing a run found wrong.
type Problem struct {
	Kind   string // "leak", "failure" or "mismatch"
	Tenant string // from the request's Host header
	Path   string
	Status int
	Detail string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s %s: %d %s", p.Kind, p.Tenant, p.Path, p.Status, p.Detail)
}

// Percentiles of request latency.
type Percentiles struct {
	P50, P90, P99, Max time.Duration
}

// Throughput is requests per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// CheckURL returns an error unless raw is an http(s) URL on a loopback
// address.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URL %q: want http://<loopback address>:<port>, e.g. http://127.0.0.1:8080", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("URL %q: loadcheck only sends load to this machine; use a loopback address such as 127.0.0.1, ::1 or localhost", raw)
	}
	return u, nil
}

// NewClient returns a keep-alive HTTP client for concurrency workers that
// only connects to loopback addresses.
func NewClient(concurrency int) *http.Client {
	dialer := &net.Dialer{
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
		// The address here is resolved: a name that points elsewhere is
		// refused too.
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("loadcheck: %s is not a loopback address", address)
			}
			return nil
		},
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		// A redirect would leave the Host header behind.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// page is the JSON of GET /subtasks/<n>/.
type page struct {
	Page  int   `json:"page"`
	Pages int   `json:"pages"`
	Total int   `json:"total"`
	Rows  []row `json:"rows"`
}

type row struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Account string `json:"account"`
}

// Run sends the requests and checks every answer. It returns an error only
// when it cannot run at all (bad options); what it found is in Result.
func Run(ctx context.Context, o Options) (Result, error) {
	u, err := CheckURL(o.URL)
	if err != nil {
		return Result{}, err
	}
	if o.BaseDomain == "" {
		return Result{}, errors.New("base domain must not be empty")
	}
	if o.AllTenants {
		o.Tenants = []string{""}
	}
	if len(o.Tenants) == 0 {
		return Result{}, errors.New("no tenants to send requests for")
	}
	if o.Page < 0 {
		return Result{}, fmt.Errorf("page %d: want 1 or more, or 0 for random pages", o.Page)
	}
	if o.Requests < 0 {
		return Result{}, fmt.Errorf("requests %d: want 0 (until stopped) or more", o.Requests)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Client == nil {
		o.Client = NewClient(o.Concurrency)
		defer o.Client.CloseIdleConnections()
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Samples <= 0 {
		o.Samples = 10
	}

	if o.Writes < 0 || o.Writes > 1 || math.IsNaN(o.Writes) {
		return Result{}, fmt.Errorf("writes %g: want a share from 0 (reads only) to 1 (writes only)", o.Writes)
	}
	if o.Writes > 0 && o.Expect != nil {
		return Result{}, errors.New("a load that writes changes the totals Expect would check: give one or the other")
	}
	if o.Zipf < 0 || math.IsNaN(o.Zipf) || math.IsInf(o.Zipf, 0) {
		return Result{}, fmt.Errorf("zipf %g: want 0 (uniform) or a positive exponent such as 1.1", o.Zipf)
	}
	r := &runner{o: o, base: u, tenants: make([]tenantState, len(o.Tenants))}
	if o.Zipf > 0 {
		r.cdf = ZipfCDF(len(o.Tenants), o.Zipf)
	}
	for i, slug := range o.Tenants {
		host := slug + "." + o.BaseDomain
		if o.AllTenants {
			host = o.BaseDomain
		}
		if port := u.Port(); port != "" {
			host = net.JoinHostPort(host, port)
		}
		r.tenants[i] = tenantState{slug: slug, host: host}
		r.tenants[i].firstTotal.Store(-1)
	}
	start := time.Now()
	parts := make([]*tally, o.Concurrency)
	writers := make([]*writer, o.Concurrency)
	var wg sync.WaitGroup
	for w := range parts {
		parts[w], writers[w] = newTally(o.Samples, start), &writer{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, rand.New(rand.NewPCG(o.Seed, uint64(w))), writers[w], parts[w])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r.cleanUp(ctx, writers)
	return merge(parts, elapsed, o.Samples, o.Concurrency), nil
}

type runner struct {
	o       Options
	base    *url.URL
	tenants []tenantState
	// cdf, for a Zipf load, is the cumulative share of requests of the
	// tenants up to each rank (see ZipfCDF); nil for a uniform one.
	cdf    []float64
	issued atomic.Int64
}

// ZipfCDF returns, for n tenants ranked 1 to n, the share of requests that
// goes to the tenants of rank 1 to k+1 at index k, when the tenant of rank
// k gets a share proportional to 1/k^s. The last entry is 1.
func ZipfCDF(n int, s float64) []float64 {
	cdf := make([]float64, n)
	sum := 0.0
	for k := range n {
		sum += math.Pow(float64(k+1), -s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	if n > 0 {
		cdf[n-1] = 1
	}
	return cdf
}

// pick returns the index of the tenant to ask for next.
func (r *runner) pick(rng *rand.Rand) int {
	if r.cdf == nil {
		return rng.IntN(len(r.tenants))
	}
	i, _ := slices.BinarySearch(r.cdf, rng.Float64())
	return min(i, len(r.cdf)-1)
}

// tenantState is what the workers learn about a tenant as they go.
type tenantState struct {
	slug, host string
	pages      atomic.Int64 // 0 until a page has said how many there are
	firstTotal atomic.Int64 // -1 until the first answer
	known      known        // for writes
}

func (r *runner) work(ctx context.Context, rng *rand.Rand, w *writer, t *tally) {
	for ctx.Err() == nil {
		if n := r.issued.Add(1); r.o.Requests > 0 && n > int64(r.o.Requests) {
			return
		}
		ts := &r.tenants[r.pick(rng)]
		if r.o.Writes > 0 && rng.Float64() < r.o.Writes {
			r.write(ctx, rng, w, ts, t)
			continue
		}
		pageNo := 1
		if n := ts.pages.Load(); n > 1 {
			pageNo = 1 + rng.IntN(int(n))
		}
		if r.o.Page > 0 {
			pageNo = r.o.Page
		}
		path := "/subtasks/" + strconv.Itoa(pageNo) + "/"
		if pageNo == 1 && rng.IntN(2) == 0 {
			path = "/subtasks/"
		}
		r.one(ctx, ts, path, pageNo, t)
	}
}

// one sends one request and checks its answer.
func (r *runner) one(ctx context.Context, ts *tenantState, path string, pageNo int, t *tally) {
	reqCtx, cancel := context.WithTimeout(ctx, r.o.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, r.base.JoinPath(path).String(), nil)
	if err != nil {
		t.fail(ts.slug, path, 0, err.Error())
		return
	}
	req.Host = ts.host
	req.Header.Set("Accept", "application/json")
	if c := r.o.Sessions[ts.slug]; c != "" {
		req.Header.Set("Cookie", c)
	}
	start := time.Now()
	resp, err := r.o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // the run ended, not the server
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the same failure for every path counts once in Answers
		}
		t.fail(ts.slug, path, 0, err.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		t.fail(ts.slug, path, resp.StatusCode, "reading the answer: "+err.Error())
		return
	}
	if resp.StatusCode != http.StatusOK {
		t.fail(ts.slug, path, resp.StatusCode, failureMessage(resp, body, r.o.Sessions[ts.slug] != ""))
		return
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		t.fail(ts.slug, path, resp.StatusCode, "not a JSON page: "+err.Error())
		return
	}
	if p.Page != pageNo || p.Pages < 1 {
		t.fail(ts.slug, path, resp.StatusCode, fmt.Sprintf("answered page %d of %d for page %d", p.Page, p.Pages, pageNo))
		return
	}
	t.okOp(ts.slug, elapsed, false)
	if r.o.Writes > 0 {
		// Writes create before they delete, and delete only what they
		// created, so a tenant never has fewer pages than it had before
		// the run: the fewest seen exist throughout, while one more may
		// come and go.
		for n := ts.pages.Load(); (n == 0 || int64(p.Pages) < n) && !ts.pages.CompareAndSwap(n, int64(p.Pages)); n = ts.pages.Load() {
		}
	} else {
		ts.pages.Store(int64(p.Pages))
	}
	r.check(ts, path, p, t)
	if r.o.Writes > 0 {
		ids := make([]int64, 0, len(p.Rows))
		for _, rw := range p.Rows {
			if rw.Name != createdName {
				ids = append(ids, rw.ID)
			}
		}
		ts.known.saw(ids)
	}
}

// failureMessage says what a failed answer means. A page that wants a
// signed-in user answers 401 (JSON) or 303 to /login (HTML): the run
// either had no session for the tenant or had its session refused.
func failureMessage(resp *http.Response, body []byte, hadSession bool) string {
	signIn := resp.StatusCode == http.StatusUnauthorized ||
		(resp.StatusCode/100 == 3 && strings.HasPrefix(resp.Header.Get("Location"), "/login"))
	switch {
	case signIn && hadSession:
		return "not signed in: the server refused this tenant's session (expired, signed with another SECRET_KEY, or revoked?)"
	case signIn:
		return "not signed in: the page wants a signed-in user of this tenant, and the run has no session for it"
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return "(no JSON error message)"
}

// check counts the rows of a page and any that belong to another tenant, and
// compares the page with what the tenant should hold.
func (r *runner) check(ts *tenantState, path string, p page, t *tally) {
	t.rows += int64(len(p.Rows))
	for _, rw := range p.Rows {
		if r.o.AllTenants {
			break
		}
		if rw.Account != ts.slug {
			t.leak(ts.slug, path, fmt.Sprintf("row of %q: subtask %d %q", rw.Account, rw.ID, rw.Name))
		}
	}
	if r.o.Writes > 0 {
		return // totals move under writes
	}
	want, ok := r.o.Expect[ts.slug]
	if !ok {
		ts.firstTotal.CompareAndSwap(-1, int64(p.Total))
		if first := ts.firstTotal.Load(); first != int64(p.Total) {
			t.mismatch(ts.slug, path, fmt.Sprintf("total %d, was %d on the first answer (is data being written?)", p.Total, first))
		}
		return
	}
	if p.Total != want.Total {
		t.mismatch(ts.slug, path, fmt.Sprintf("total %d, want %d", p.Total, want.Total))
		return
	}
	if want.Names == nil {
		return
	}
	for _, rw := range p.Rows {
		if want.Names[rw.Name] == 0 {
			t.mismatch(ts.slug, path, fmt.Sprintf("subtask %d %q is not one of the tenant's", rw.ID, rw.Name))
			return
		}
	}
}

// tally is one worker's counts, merged when the run ends.
type tally struct {
	samples   int
	start     time.Time
	res       Result
	latencies []time.Duration // of every OK request
	reads     []time.Duration
	writes    []time.Duration
	rows      int64
}

func newTally(samples int, start time.Time) *tally {
	return &tally{samples: samples, start: start, res: Result{Answers: map[Answer]int{}, PerTenant: map[string]TenantResult{}}}
}

func (t *tally) okOp(slug string, d time.Duration, write bool) {
	if write {
		t.res.Writes.Requests++
		t.res.Writes.OK++
		t.writes = append(t.writes, d)
	} else {
		t.res.Reads.Requests++
		t.res.Reads.OK++
		t.reads = append(t.reads, d)
	}
	t.res.Requests++
	t.res.OK++
	tr := t.res.PerTenant[slug]
	tr.Requests++
	tr.OK++
	t.res.PerTenant[slug] = tr
	t.latencies = append(t.latencies, d)
	t.res.PerSecond = addAt(t.res.PerSecond, int(time.Since(t.start)/time.Second), 1)
}

// addAt adds n to counts[i], growing counts as needed.
func addAt(counts []int, i, n int) []int {
	for len(counts) <= i {
		counts = append(counts, 0)
	}
	counts[i] += n
	return counts
}

// conflict counts a write answered 412: an answer, but not a write done
// nor a failure.
func (t *tally) conflict(slug string, d time.Duration) {
	t.res.Conflicts++
	t.res.Requests++
	t.res.Writes.Requests++
	tr := t.res.PerTenant[slug]
	tr.Requests++
	t.res.PerTenant[slug] = tr
}

func (t *tally) fail(slug, path string, status int, msg string) {
	t.failOp(slug, path, status, msg, false)
}

func (t *tally) failOp(slug, path string, status int, msg string, write bool) {
	if write {
		t.res.Writes.Requests++
		t.res.Writes.Failed++
	} else {
		t.res.Reads.Requests++
		t.res.Reads.Failed++
	}
	t.res.Requests++
	t.res.Failed++
	tr := t.res.PerTenant[slug]
	tr.Requests++
	tr.Failed++
	t.res.PerTenant[slug] = tr
	t.res.Answers[Answer{status, msg}]++
	t.sample(Problem{"failure", slug, path, status, msg})
}

func (t *tally) leak(slug, path, detail string) {
	t.res.LeakedRows++
	tr := t.res.PerTenant[slug]
	tr.LeakedRows++
	t.res.PerTenant[slug] = tr
	t.sample(Problem{"leak", slug, path, http.StatusOK, detail})
}

func (t *tally) mismatch(slug, path, detail string) {
	t.res.Mismatches++
	t.sample(Problem{"mismatch", slug, path, http.StatusOK, detail})
}

func (t *tally) sample(p Problem) {
	n := 0
	for _, q := range t.res.Problems {
		if q.Kind == p.Kind {
			n++
		}
	}
	if n < t.samples {
		t.res.Problems = append(t.res.Problems, p)
	}
}

func merge(parts []*tally, elapsed time.Duration, samples, concurrency int) Result {
	out := newTally(samples, time.Time{})
	var lat, reads, writes []time.Duration
	for _, p := range parts {
		out.res.Reads.add(p.res.Reads)
		out.res.Writes.add(p.res.Writes)
		out.res.Conflicts += p.res.Conflicts
		reads = append(reads, p.reads...)
		writes = append(writes, p.writes...)
		out.res.Requests += p.res.Requests
		out.res.OK += p.res.OK
		out.res.Failed += p.res.Failed
		out.res.LeakedRows += p.res.LeakedRows
		out.res.Mismatches += p.res.Mismatches
		out.res.RowsChecked += p.rows
		for a, n := range p.res.Answers {
			out.res.Answers[a] += n
		}
		for slug, tr := range p.res.PerTenant {
			sum := out.res.PerTenant[slug]
			sum.Requests += tr.Requests
			sum.OK += tr.OK
			sum.Failed += tr.Failed
			sum.LeakedRows += tr.LeakedRows
			out.res.PerTenant[slug] = sum
		}
		for _, pr := range p.res.Problems {
			out.sample(pr)
		}
		lat = append(lat, p.latencies...)
		for i, n := range p.res.PerSecond {
			out.res.PerSecond = addAt(out.res.PerSecond, i, n)
		}
	}
	out.res.Elapsed = elapsed
	out.res.Reads.Latency = percentiles(reads)
	out.res.Writes.Latency = percentiles(writes)
	out.res.Latency = percentiles(lat) // sorts lat
	out.res.Latencies = lat
	if len(lat) > 0 {
		// The expected interval between one worker's requests counts every
		// answered request, failed ones too: each took a worker's turn.
		out.res.Corrected = CorrectedPercentiles(lat, elapsed*time.Duration(concurrency)/time.Duration(max(len(lat), out.res.Requests)))
	}
	return out.res
}

func (s *OpStats) add(o OpStats) {
	s.Requests += o.Requests
	s.OK += o.OK
	s.Failed += o.Failed
}

// CorrectedPercentiles corrects latencies measured by a closed-loop
// generator for coordinated omission, as HdrHistogram's
// recordValueWithExpectedInterval does. A worker that waits 50 ms for one
// answer sends nothing meanwhile, so the requests a steady client would
// have sent during the stall, and that would have waited too, are missing
// from the sample. For each latency L longer than the expected interval
// between one worker's requests, the missing requests are added back with
// latencies L-interval, L-2*interval, and so on.
func CorrectedPercentiles(latencies []time.Duration, interval time.Duration) Percentiles {
	if interval <= 0 {
		return percentiles(slices.Clone(latencies))
	}
	// Bounded, so that one pathological stall cannot exhaust memory.
	const maxAdded = 1 << 22
	out := slices.Clone(latencies)
	for _, l := range latencies {
		for missing := l - interval; missing >= interval && len(out) < len(latencies)+maxAdded; missing -= interval {
			out = append(out, missing)
		}
	}
	return percentiles(out)
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1]}
}
