package compare

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrk runs loads with wrk (Debian's package), which costs the shared cores
// far less per request than the Go generator, so more of them are left to
// the server and PostgreSQL. It reports latency percentiles as measured
// (not corrected for coordinated omission) and no throughput over time.
type wrk struct {
	path string // the wrk binary
	dir  string // for its Lua scripts
}

// target is what one load asks for: a Host and path per request, chosen at
// random among the given ones.
type target struct {
	// hosts[i] is asked for with pages[i] pages (random page each time),
	// or page when it is set.
	hosts []string
	// cookies[i], when not empty, is the Cookie header sent to hosts[i]:
	// the session of a user of that tenant.
	cookies []string
	pages   []int
	page    int
	// cdf, when set, picks hosts by Zipf's law (loadcheck.ZipfCDF over
	// hosts in rank order) instead of uniformly.
	cdf []float64
}

// wrkScript picks each request's host and page (when there is a choice)
// and prints what wrk measured as JSON.
const wrkScript = `
local hosts = {%s}
local cookies = {%s}
local pages = {%s}
local page = %d
local seed = %d
-- cdf[k]: the share of requests of hosts 1 to k (empty: uniform).
local cdf = {%s}
local function pick()
  if #cdf == 0 then return math.random(#hosts) end
  local r = math.random()
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < r then lo = mid + 1 else hi = mid end
  end
  return lo
end
-- Each thread has its own Lua state: number them, so that their random
-- sequences differ.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
init = function(args)
  math.randomseed(seed + (id or 0))
end
request = function()
  local i = pick()
  local p = page
  if p == 0 then p = math.random(pages[i]) end
  wrk.headers["Host"] = hosts[i]
  wrk.headers["Accept"] = "application/json"
  local c = cookies[i]
  if c ~= nil and c ~= "" then wrk.headers["Cookie"] = c else wrk.headers["Cookie"] = nil end
  return wrk.format("GET", "/subtasks/" .. p .. "/")
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,"max_us":%%d,"percentiles":[',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency.max))
  local ps = {%s}
  for i, p in ipairs(ps) do
    if i > 1 then io.write(",") end
    io.write(string.format("[%%g,%%d]", p, latency:percentile(p)))
  end
  io.write("]}\n")
end
`

// wrkPercentiles are the points of the latency distribution asked of wrk.
var wrkPercentiles = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97.5, 99, 99.5, 99.9, 99.99}

type wrkResult struct {
	Requests    int          `json:"requests"`
	DurationUS  int64        `json:"duration_us"`
	Connect     int          `json:"connect"`
	Read        int          `json:"read"`
	Write       int          `json:"write"`
	Status      int          `json:"status"`
	Timeout     int          `json:"timeout"`
	MaxUS       int64        `json:"max_us"`
	Percentiles [][2]float64 `json:"percentiles"`
}

// run loads base (an http://127.0.0.1:port URL) for d with conns
// connections on two threads.
func (w wrk) run(ctx context.Context, kind, label, base string, t target, d time.Duration, conns int) (Load, error) {
	u, err := url.Parse(base)
	if err != nil {
		return Load{}, err
	}
	quote := func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s) // hosts and cookies are plain ASCII
		}
		return strings.Join(q, ",")
	}
	pages := make([]string, len(t.pages))
	for i, p := range t.pages {
		pages[i] = strconv.Itoa(max(1, p))
	}
	ps := make([]string, len(wrkPercentiles))
	for i, p := range wrkPercentiles {
		ps[i] = strconv.FormatFloat(p, 'g', -1, 64)
	}
	hosts := make([]string, len(t.hosts))
	for i, h := range t.hosts {
		hosts[i] = h + ":" + u.Port()
	}
	script := filepath.Join(w.dir, "load.lua")
	if len(pages) == 0 {
		pages = []string{"1"}
	}
	cdf := make([]string, len(t.cdf))
	for i, c := range t.cdf {
		cdf[i] = strconv.FormatFloat(c, 'g', 17, 64)
	}
	cookies := make([]string, len(t.hosts))
	copy(cookies, t.cookies)
	body := fmt.Sprintf(wrkScript, quote(hosts), quote(cookies), strings.Join(pages, ","), t.page, time.Now().UnixNano()%1e9, strings.Join(cdf, ","), strings.Join(ps, ","))
	if err := os.WriteFile(script, []byte(body), 0o600); err != nil {
		return Load{}, err
	}
	secs := max(1, int(math.Round(d.Seconds())))
	cmd := exec.CommandContext(ctx, w.path, "-t", "2", "-c", strconv.Itoa(conns), "-d", strconv.Itoa(secs)+"s",
		"--timeout", "30s", "-s", script, base+"/")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Load{}, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	out := stdout.String()
	start := strings.LastIndex(out, `{"requests"`)
	if start < 0 {
		return Load{}, fmt.Errorf("wrk printed no result: %s", strings.TrimSpace(out+stderr.String()))
	}
	var r wrkResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(out[start:])), &r); err != nil {
		return Load{}, fmt.Errorf("wrk's result: %w", err)
	}
	return r.load(kind, label), nil
}

// load turns wrk's figures into a Load. Requests wrk counts as errors
// (no answer, or a status other than 2xx/3xx) are the failed ones.
func (r wrkResult) load(kind, label string) Load {
	failed := r.Connect + r.Read + r.Write + r.Status + r.Timeout
	ok := max(0, r.Requests-r.Status)
	l := Load{Kind: kind, Target: label, Requests: r.Requests + r.Connect + r.Write + r.Read + r.Timeout, OK: ok, Failed: failed,
		Elapsed: time.Duration(r.DurationUS) * time.Microsecond}
	if l.Elapsed > 0 {
		l.Throughput = float64(ok) / l.Elapsed.Seconds()
	}
	at := func(p float64) time.Duration {
		for _, pv := range r.Percentiles {
			if pv[0] == p {
				return time.Duration(pv[1]) * time.Microsecond
			}
		}
		return 0
	}
	l.Raw = Percentiles{P50: at(50), P90: at(90), P99: at(99), Max: time.Duration(r.MaxUS) * time.Microsecond}
	l.Latency = l.Raw
	// A histogram from the distribution's points: the requests between two
	// percentiles fall in the bucket that ends at the higher one.
	prev := 0.0
	for _, pv := range r.Percentiles {
		l.Histogram.Bounds = append(l.Histogram.Bounds, time.Duration(pv[1])*time.Microsecond)
		l.Histogram.Counts = append(l.Histogram.Counts, int(math.Round((pv[0]-prev)/100*float64(ok))))
		prev = pv[0]
	}
	if len(r.Percentiles) > 0 {
		l.Histogram.Bounds = append(l.Histogram.Bounds, l.Raw.Max)
		l.Histogram.Counts = append(l.Histogram.Counts, int(math.Round((100-prev)/100*float64(ok))))
	}
	return l
}
