package compare

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"tenancy/internal/pgsettings"
)

// readingOfNumbers says in words what the figures show. Every sentence is
// derived from the Report: which strategy wins depends on the run, so
// nothing here may assume it. A sentence compares only figures that are
// conclusive (see conclusive) and calls a difference within noiseRatio the
// same; it never names a cause the figures cannot show.
func readingOfNumbers(r Report) []string {
	var out []string
	if len(r.Strategies) > 0 {
		out = append(out, rulesReading())
	}
	out = appendNonEmpty(out, tenantPageReading(r))
	out = appendNonEmpty(out, lastFirstReading(r))
	for _, s := range r.Strategies {
		out = appendNonEmpty(out, memoryReading(s))
	}
	out = appendNonEmpty(out, connectionsReading(r))
	out = appendNonEmpty(out, maxConnectionsReading(r))
	out = appendNonEmpty(out, failuresReading(r))
	out = appendNonEmpty(out, isolationReading(r))
	return out
}

// noiseRatio is how far apart two figures of one run may be and still be
// read as the same: within ±20%. Back-to-back runs of one load on this
// project's machine moved by up to 13% (the RLS cost over nine runs,
// 1.6-13.2%; random pages at 3,873 and 4,084 req/s), so a smaller
// difference says nothing about the strategies.
const noiseRatio = 1.2

// A load shorter than minLoadTime, or with fewer than minLoadRequests
// answered, is too short to conclude from: one stall (a checkpoint, a
// garbage collection, a tenant's first connection) weighs on its p99, which
// then rests on fewer than 20 requests, or fills a good part of its time.
// 10 s is compare's default --duration; the half second of slack is
// because a load measures a hair under what it was given.
const (
	minLoadTime     = 10 * time.Second
	minLoadRequests = 2000
)

// conclusive says whether a load ran long enough to conclude from.
func conclusive(l Load) bool {
	return l.OK >= minLoadRequests && l.Elapsed+time.Second/2 >= minLoadTime
}

// withinNoise says whether ratio v is within noiseRatio of 1.
func withinNoise(v float64) bool {
	return v <= noiseRatio && v >= 1/noiseRatio
}

// rulesReading states the rules the other sentences follow, so that a
// reader can check them against the table.
func rulesReading() string {
	return fmt.Sprintf("How this is read: figures whose ratio is within ±%.0f%% (%.2f× to %.1f×) are taken as the same, "+
		"as back-to-back runs of one load differ that much; no conclusion is drawn from a load that ran under %s or answered under %s requests.",
		(noiseRatio-1)*100, 1/noiseRatio, noiseRatio, humanDuration(minLoadTime), humanCount(minLoadRequests))
}

func appendNonEmpty(out []string, s string) []string {
	if s == "" {
		return out
	}
	return append(out, s)
}

// servedKind picks the tenant page to compare on: any page when both ran
// it, else the largest tenant's first page.
func servedKind(r Report) (string, []StrategyResult, []Load) {
	for _, kind := range []string{LoadAnyPage, LoadFirstPage} {
		var ss []StrategyResult
		var ls []Load
		for _, s := range r.Strategies {
			if l, ok := findLoad(s, kind); ok && l.OK > 0 {
				ss, ls = append(ss, s), append(ls, l)
			}
		}
		if len(ss) >= 2 {
			return kind, ss, ls
		}
	}
	return "", nil, nil
}

func tenantPageReading(r Report) string {
	if len(r.Strategies) < 2 {
		return "Only one strategy ran, so there is nothing to compare its speed with."
	}
	kind, ss, ls := servedKind(r)
	if kind == "" {
		return "No tenant page was served successfully by two strategies, so their speed cannot be compared."
	}
	// Two strategies in practice; with more, compare the fastest with the
	// runner-up.
	order := make([]int, len(ls))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return ls[order[i]].Throughput > ls[order[j]].Throughput })
	fast, slow := order[0], order[1]
	a, b := ls[fast], ls[slow]
	p99 := fmt.Sprintf("p99 latency was %s under %s and %s under %s",
		humanDuration(a.Latency.P99), ss[fast].Name, humanDuration(b.Latency.P99), ss[slow].Name)
	switch {
	case !conclusive(a) || !conclusive(b):
		return fmt.Sprintf("On the load %q, %s served %s req/s and %s %s; %s. These loads were too short to tell the strategies apart: run compare with --duration %s or more.",
			kind, ss[fast].Name, humanRate(a.Throughput), ss[slow].Name, humanRate(b.Throughput), p99, minLoadTime)
	case b.Throughput <= 0 || withinNoise(a.Throughput/b.Throughput):
		return fmt.Sprintf("On the load %q, %s and %s served about the same throughput (%s and %s req/s, within the noise); %s.",
			kind, ss[fast].Name, ss[slow].Name, humanRate(a.Throughput), humanRate(b.Throughput), p99)
	}
	return fmt.Sprintf("On the load %q, %s served %s req/s against %s's %s, %s the throughput; %s.",
		kind, ss[fast].Name, humanRate(a.Throughput), ss[slow].Name, humanRate(b.Throughput),
		humanRatio(a.Throughput/b.Throughput), p99)
}

// lastFirstReading compares each strategy's last page with its first on
// the largest tenant. It says how much slower, not why: the ratio alone
// cannot tell a slower query from a stall that fell into one load.
func lastFirstReading(r Report) string {
	var parts, short []string
	slower := false
	for _, s := range r.Strategies {
		v, ok := lastFirstRatio(s)
		if !ok {
			continue
		}
		first, _ := findLoad(s, LoadFirstPage)
		last, _ := findLoad(s, LoadLastPage)
		switch {
		case !conclusive(first) || !conclusive(last):
			short = append(short, s.Name)
		case withinNoise(v):
			parts = append(parts, fmt.Sprintf("%s under %s, within the noise", humanRatio(v), s.Name))
		default:
			parts = append(parts, fmt.Sprintf("%s under %s", humanRatio(v), s.Name))
			slower = slower || v > 1
		}
	}
	var out []string
	if len(parts) > 0 {
		s := "On the largest tenant, the last page's p99 against the first page's: " + strings.Join(parts, "; ")
		if slower {
			s += ". A ratio beyond the noise says a late page cost more in this run, not why."
		} else {
			s += ": paging deep cost nothing measurable at this size."
		}
		out = append(out, s)
	}
	if len(short) > 0 {
		out = append(out, fmt.Sprintf("Under %s the largest tenant's first- and last-page loads were too short to compare their p99s: run compare with --duration %s or more.",
			joinAnd(short), minLoadTime))
	}
	return strings.Join(out, " ")
}

// memoryReading calls memory flat when it moved by no more than 10% or
// 5 MB, whichever is larger: below that, RSS moves with allocator and
// garbage collector timing rather than with anything the strategy holds.
func memoryReading(s StrategyResult) string {
	if s.RSSBeforeKB <= 0 || s.RSSAfterKB <= 0 {
		return ""
	}
	change := s.RSSAfterKB - s.RSSBeforeKB
	allowed := max(s.RSSBeforeKB/10, 5*1024)
	span := humanMB(s.RSSBeforeKB) + " → " + humanMB(s.RSSAfterKB) + " MB"
	switch {
	case absInt64(change) <= allowed:
		return fmt.Sprintf("Under %s the server's memory stayed flat across the loads (%s).", s.Name, span)
	case change > 0:
		return fmt.Sprintf("Under %s the server's memory grew by %s MB across the loads (%s).", s.Name, humanMB(change), span)
	default:
		return fmt.Sprintf("Under %s the server's memory fell by %s MB across the loads (%s).", s.Name, humanMB(-change), span)
	}
}

func absInt64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// connectionsReading tells connections held open apart from the budget of
// connections working at once (strategy.Options MaxConns and
// TenantConns): a multidb server holds many more open than work at once.
func connectionsReading(r Report) string {
	var parts []string
	for _, s := range r.Strategies {
		if s.ServerConns <= 0 {
			continue
		}
		conns := " PostgreSQL connections"
		if len(parts) > 0 {
			conns = ""
		}
		p := fmt.Sprintf("%s held up to %d%s open", s.Name, s.ServerConns, conns)
		if s.OpenLimit > 0 {
			p += fmt.Sprintf(" across %s tenant databases, idle ones included", humanCount(int64(s.Accounts)))
			switch {
			case s.ServerConns > s.OpenLimit:
				// Pools opening while others close pass the limit for a
				// moment, and the watcher counts the health-check pool too.
				p += fmt.Sprintf(", above the %d it may keep open (briefly, while some pools open and others close)", s.OpenLimit)
			case s.ServerConns == s.OpenLimit:
				p += fmt.Sprintf(", all it may keep open (%d)", s.OpenLimit)
			default:
				p += fmt.Sprintf(", of the %d it may keep open", s.OpenLimit)
			}
		} else if s.Accounts > 0 {
			p += fmt.Sprintf(" for %s tenants", humanCount(int64(s.Accounts)))
		}
		if s.ConnBudget > 0 {
			p += fmt.Sprintf("; its budget lets at most %d work at once%s", s.ConnBudget, budgetScope(s))
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return "Under load, " + strings.Join(parts, "; and ") + "."
}

// budgetScope is what the working budget bounds (strategy.Options
// MaxConns): multidb's budget is shared by all its tenant databases,
// singleschema's and multischema's apply to each of their two pools.
func budgetScope(s StrategyResult) string {
	switch s.Name {
	case "multidb":
		return ", across all tenants"
	case "singleschema", "multischema", CitusColumn:
		return " in each of its two pools (tenant pages, the all-tenants view)"
	}
	return ""
}

// maxConnectionsReading says when multidb ran on a server that allows
// fewer connections than its tenants want (pgsettings.MultiDBConnections,
// with PostgreSQL's default reserve of 3), and, when the figures show it,
// that multidb held fewer than the two per tenant it keeps given room.
func maxConnectionsReading(r Report) string {
	if r.Machine.MaxConnections <= 0 {
		return ""
	}
	for _, s := range r.Strategies {
		want := pgsettings.MultiDBConnections(s.Accounts, 3)
		if s.Name != "multidb" || r.Machine.MaxConnections >= want {
			continue
		}
		out := fmt.Sprintf("PostgreSQL's max_connections was %d, below the about %d that multidb with %s tenants wants (see the warning tenancy compare printed for how to raise it)",
			r.Machine.MaxConnections, want, humanCount(int64(s.Accounts)))
		if s.ServerConns > 0 && s.ServerConns < 2*s.Accounts {
			out += fmt.Sprintf(": multidb held up to %d connections for %s tenants, fewer than the 2 per tenant it keeps open given room, so its figures are not of multidb with the connections it would keep",
				s.ServerConns, humanCount(int64(s.Accounts)))
		}
		return out + "."
	}
	return ""
}

func failuresReading(r Report) string {
	var parts []string
	for _, s := range r.Strategies {
		failed := 0
		for _, l := range s.Loads {
			failed += l.Failed
		}
		if failed > 0 {
			parts = append(parts, fmt.Sprintf("%s requests failed under %s", humanCount(int64(failed)), s.Name))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return joinAnd(parts) + "; failed requests are not in the latency percentiles or the throughput."
}

func isolationReading(r Report) string {
	var failed, unproved []string
	for _, s := range r.Strategies {
		switch probeWord(s.Probe) {
		case "FAIL":
			failed = append(failed, fmt.Sprintf("%s served %s rows of another tenant", s.Name, humanCount(s.Probe.LeakedRows)))
		case "NOT RUN":
			unproved = append(unproved, s.Name)
		}
	}
	switch {
	case len(r.Strategies) == 0:
		return ""
	case len(failed) > 0:
		return "Isolation FAILED: " + strings.Join(failed, "; ") + "."
	case len(unproved) > 0:
		return "The isolation probe checked no rows under " + joinAnd(unproved) + ", so isolation is not shown there."
	default:
		return "The isolation probe found no leaked rows under any strategy."
	}
}

// tradeOffTable is the talk's qualitative comparison, as it holds for this
// codebase; unlike the reading, it does not depend on the run.
func tradeOffTable() textTable {
	return textTable{
		Words:  true,
		Header: []string{"", "multidb", "multischema", "singleschema"},
		Rows: [][]string{
			{"code simplicity",
				"Simple: queries need no tenant filter; the database they run in is the tenant.",
				"Simple: queries need no tenant filter; each transaction first takes on the tenant's role and schema.",
				"Every query needs the tenant scope, enforced by a gorm plugin, with row-level security as the fail-safe."},
			{"isolation",
				"Strongest: separate databases, so a bug cannot read another tenant's rows.",
				"By grants: each tenant's role may use its own schema only, and the app role none; a query naming another schema is refused.",
				"By policy: proved by the isolation probe and the tests, but one bad policy or a BYPASSRLS role breaks it."},
			{"many tenants",
				"Gets hard: one database, one migration run and its own connections per tenant.",
				"Middling: one pool, but a schema, a role and a migration run per tenant, and every backend caches the plans and catalog entries of the schemas it has served.",
				"Scales: any number of tenants in one database and one connection pool."},
			{"cross-tenant queries",
				"None: the all-tenants page is only a list of tenants.",
				"A query per tenant schema, read by a role granted each: the all-tenants view reads a page's worth from the schemas it spans.",
				"Plain SQL over one schema: the all-tenants view, run as a read-only role."},
			{"administration and deployment",
				"Every migration and every backup runs once per database.",
				"Every migration runs once per schema, each in its own transaction; one backup.",
				"One migration run and one backup."},
		},
	}
}
