package compare

import (
	"fmt"
	"sort"
	"strings"
)

// readingOfNumbers says in words what the figures show. Every sentence is
// derived from the Report: which strategy wins depends on the run, so
// nothing here may assume it.
func readingOfNumbers(r Report) []string {
	var out []string
	out = appendNonEmpty(out, tenantPageReading(r))
	out = appendNonEmpty(out, lastFirstReading(r))
	for _, s := range r.Strategies {
		out = appendNonEmpty(out, memoryReading(s))
	}
	out = appendNonEmpty(out, connectionsReading(r))
	out = appendNonEmpty(out, failuresReading(r))
	out = appendNonEmpty(out, isolationReading(r))
	return out
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
	if b.Throughput <= 0 || a.Throughput/b.Throughput < 1.05 {
		return fmt.Sprintf("On the load %q, %s and %s served about the same throughput (%s and %s req/s); %s.",
			kind, ss[fast].Name, ss[slow].Name, humanRate(a.Throughput), humanRate(b.Throughput), p99)
	}
	return fmt.Sprintf("On the load %q, %s served %s req/s against %s's %s, %s the throughput; %s.",
		kind, ss[fast].Name, humanRate(a.Throughput), ss[slow].Name, humanRate(b.Throughput),
		humanRatio(a.Throughput/b.Throughput), p99)
}

func lastFirstReading(r Report) string {
	var parts []string
	deep := false
	for _, s := range r.Strategies {
		v, ok := lastFirstRatio(s)
		if !ok {
			continue
		}
		of := ""
		if len(parts) == 0 {
			of = " the first page's"
		}
		parts = append(parts, fmt.Sprintf("%s%s under %s", humanRatio(v), of, s.Name))
		deep = deep || v >= 1.5
	}
	if len(parts) == 0 {
		return ""
	}
	s := "On the largest tenant, the last page's p99 was " + strings.Join(parts, " and ")
	if deep {
		// True of this codebase: listSubtasks in package strategy pages
		// with LIMIT/OFFSET, in both strategies.
		return s + ": both strategies page with OFFSET, so a late page still walks past every row before it."
	}
	return s + ": paging deep cost little at this size."
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
		p := fmt.Sprintf("%s held up to %d%s", s.Name, s.ServerConns, conns)
		if s.Accounts > 0 {
			p += fmt.Sprintf(" for %s tenants", humanCount(int64(s.Accounts)))
		}
		switch {
		case s.ConnBudget > 0 && s.ServerConns >= s.ConnBudget:
			p += fmt.Sprintf(" (its whole budget of %d)", s.ConnBudget)
		case s.ConnBudget > 0:
			p += fmt.Sprintf(" (budget %d)", s.ConnBudget)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return "Under load, " + strings.Join(parts, "; ") + "."
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
	return strings.Join(parts, " and ") + "; failed requests are not in the latency percentiles or the throughput."
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
		return "The isolation probe checked no rows under " + strings.Join(unproved, " and ") + ", so isolation is not shown there."
	default:
		return "The isolation probe found no leaked rows under any strategy."
	}
}

// tradeOffTable is the talk's qualitative comparison, as it holds for this
// codebase; unlike the reading, it does not depend on the run.
func tradeOffTable() textTable {
	return textTable{
		Words:  true,
		Header: []string{"", "multidb", "singleschema"},
		Rows: [][]string{
			{"code simplicity",
				"Simple: queries need no tenant filter; the database they run in is the tenant.",
				"Every query needs the tenant scope, enforced by a gorm plugin, with row-level security as the fail-safe."},
			{"isolation",
				"Strongest: separate databases, so a bug cannot read another tenant's rows.",
				"By policy: proved by the isolation probe and the tests, but one bad policy or a BYPASSRLS role breaks it."},
			{"many tenants",
				"Gets hard: one database, one migration run and its own connections per tenant.",
				"Scales: any number of tenants in one database and one connection pool."},
			{"cross-tenant queries",
				"None: the all-tenants page is only a list of tenants.",
				"Plain SQL over one schema: the all-tenants view, run as a read-only role."},
			{"administration and deployment",
				"Every migration and every backup runs once per database.",
				"One migration run and one backup."},
		},
	}
}
