package compare

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// sweepReading says in words what the sweep's figures show, as
// readingOfNumbers does for one size: every sentence is computed from the
// figures present, and a sentence whose figures are missing is left out.
// Growth is read from the smallest size to the largest.
func sweepReading(r Report) []string {
	runs := sweepRuns(r)
	if len(runs) == 0 {
		return nil
	}
	names := seriesNames(r)
	var out []string
	out = appendNonEmpty(out, setupGrowthReading(runs, names))
	out = appendNonEmpty(out, catalogGrowthReading(runs, names))
	out = appendNonEmpty(out, zipfGrowthReading(runs, names, r.Options.Zipf))
	out = appendNonEmpty(out, mostConnectionsReading(runs, names))
	out = appendNonEmpty(out, coldTenantReading(runs, names))
	out = appendNonEmpty(out, crossTenantReading(runs, names))
	return out
}

// sweepEnds are the smallest and largest sizes, or false when the sweep
// has no growth to read.
func sweepEnds(runs []SizeRun) (small, large SizeRun, ok bool) {
	if len(runs) < 2 || runs[0].Tenants <= 0 || runs[len(runs)-1].Tenants <= runs[0].Tenants {
		return SizeRun{}, SizeRun{}, false
	}
	return runs[0], runs[len(runs)-1], true
}

// atBothEnds is a strategy's results at both ends of the sweep.
type atBothEnds struct {
	name         string
	small, large StrategyResult
}

func bothEnds(small, large SizeRun, names []string) []atBothEnds {
	var out []atBothEnds
	for _, name := range names {
		a, ok1 := strategyAt(small, name)
		b, ok2 := strategyAt(large, name)
		if ok1 && ok2 {
			out = append(out, atBothEnds{name, a, b})
		}
	}
	return out
}

func fromTo(small, large SizeRun) string {
	return fmt.Sprintf("From %s to %s tenants (%s as many)", humanCount(int64(small.Tenants)), humanCount(int64(large.Tenants)),
		humanRatio(float64(large.Tenants)/float64(small.Tenants)))
}

// setupGrowthReading says how setup time grew with the tenants under each
// strategy, and under which it grew fastest.
func setupGrowthReading(runs []SizeRun, names []string) string {
	small, large, ok := sweepEnds(runs)
	if !ok {
		return ""
	}
	type growth struct {
		name     string
		from, to time.Duration
		ratio    float64
	}
	var gs []growth
	for _, e := range bothEnds(small, large, names) {
		if e.small.Setup > 0 && e.large.Setup > 0 {
			gs = append(gs, growth{e.name, e.small.Setup, e.large.Setup, float64(e.large.Setup) / float64(e.small.Setup)})
		}
	}
	if len(gs) == 0 {
		return ""
	}
	sort.SliceStable(gs, func(i, j int) bool { return gs[i].ratio > gs[j].ratio })
	var parts []string
	for _, g := range gs {
		parts = append(parts, fmt.Sprintf("from %s to %s under %s (%s)", humanDuration(g.from), humanDuration(g.to), g.name, humanRatio(g.ratio)))
	}
	s := fmt.Sprintf("%s, setup (create + migrate) went %s", fromTo(small, large), joinAnd(parts))
	// Against the tenants' own growth: a strategy whose setup grows faster
	// than its tenants pays more per tenant the more it has.
	proportion := ""
	switch v := gs[0].ratio / (float64(large.Tenants) / float64(small.Tenants)); {
	case withinNoise(v):
		proportion = "in proportion to the tenants"
	case v > 1:
		proportion = "more than in proportion to the tenants"
	}
	switch {
	case len(gs) < 2:
		if proportion != "" {
			s += fmt.Sprintf("; under %s it grew %s", gs[0].name, proportion)
		}
	case withinNoise(gs[0].ratio / gs[1].ratio):
		s += fmt.Sprintf("; it grew about as fast under %s and %s (within the noise)", gs[0].name, gs[1].name)
	default:
		s += fmt.Sprintf("; it grew fastest under %s", gs[0].name)
		if proportion != "" {
			s += ", " + proportion
		}
	}
	return s + "."
}

// perTenantText prints a per-tenant growth with the precision its size
// deserves.
func perTenantText(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "none"
	case a >= 10:
		return groupDigits(int64(math.Round(v)))
	case a >= 1:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// catalogGrowthReading says how many pg_class entries each added tenant
// brought under each strategy.
func catalogGrowthReading(runs []SizeRun, names []string) string {
	small, large, ok := sweepEnds(runs)
	if !ok {
		return ""
	}
	var parts []string
	for _, e := range bothEnds(small, large, names) {
		a, b := e.small.CatalogEntries, e.large.CatalogEntries
		if a <= 0 || b <= 0 {
			continue
		}
		per := float64(b-a) / float64(large.Tenants-small.Tenants)
		parts = append(parts, fmt.Sprintf("%s under %s (%s → %s)", perTenantText(per), e.name, humanCount(a), humanCount(b)))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("%s, each added tenant brought about this many catalog entries (pg_class rows): %s.", fromTo(small, large), joinAnd(parts))
}

// zipfGrowthReading says whether throughput under Zipf traffic held up at
// the largest size against the smallest.
func zipfGrowthReading(runs []SizeRun, names []string, s float64) string {
	small, large, ok := sweepEnds(runs)
	if !ok {
		return ""
	}
	var parts, short []string
	for _, e := range bothEnds(small, large, names) {
		a, ok1 := findLoad(e.small, LoadZipf)
		b, ok2 := findLoad(e.large, LoadZipf)
		if !ok1 || !ok2 || a.OK == 0 || b.OK == 0 || a.Throughput <= 0 || b.Throughput <= 0 {
			continue
		}
		if !conclusive(a) || !conclusive(b) {
			short = append(short, e.name)
			continue
		}
		v := b.Throughput / a.Throughput
		span := fmt.Sprintf("%s → %s req/s", humanRate(a.Throughput), humanRate(b.Throughput))
		switch {
		case withinNoise(v):
			parts = append(parts, fmt.Sprintf("held up under %s (%s, within the noise)", e.name, span))
		case v < 1:
			parts = append(parts, fmt.Sprintf("fell to %s under %s (%s)", humanRatio(v), e.name, span))
		default:
			parts = append(parts, fmt.Sprintf("rose to %s under %s (%s)", humanRatio(v), e.name, span))
		}
	}
	var out []string
	if len(parts) > 0 {
		traffic := "Under Zipf traffic"
		if s > 0 {
			traffic += " (s = " + trimFloat(s) + ")"
		}
		out = append(out, fmt.Sprintf("%s, throughput at %s against %s: %s.", traffic,
			tenantsLabel(large.Tenants), tenantsLabel(small.Tenants), strings.Join(parts, "; ")))
	}
	if len(short) > 0 {
		out = append(out, fmt.Sprintf("The Zipf loads under %s were too short to compare across sizes: run compare with --duration %s or more.",
			joinAnd(short), minLoadTime))
	}
	return strings.Join(out, " ")
}

// mostConnectionsReading names the strategy that held the most PostgreSQL
// connections under load at the largest size.
func mostConnectionsReading(runs []SizeRun, names []string) string {
	large := runs[len(runs)-1]
	type held struct {
		name  string
		conns int
	}
	var hs []held
	for _, name := range names {
		if s, ok := strategyAt(large, name); ok && s.ServerConns > 0 {
			hs = append(hs, held{name, s.ServerConns})
		}
	}
	if len(hs) < 2 {
		return ""
	}
	sort.SliceStable(hs, func(i, j int) bool { return hs[i].conns > hs[j].conns })
	var top, rest []string
	for _, h := range hs {
		if h.conns == hs[0].conns {
			top = append(top, h.name)
		} else {
			rest = append(rest, fmt.Sprintf("%s under %s", humanCount(int64(h.conns)), h.name))
		}
	}
	var s string
	if len(top) == 1 {
		s = fmt.Sprintf("At %s, %s held the most PostgreSQL connections under load, %s", tenantsLabel(large.Tenants), top[0], humanCount(int64(hs[0].conns)))
		if small, _, ok := sweepEnds(runs); ok {
			if a, ok := strategyAt(small, top[0]); ok && a.ServerConns > 0 {
				s += fmt.Sprintf(" (%s at %s)", humanCount(int64(a.ServerConns)), tenantsLabel(small.Tenants))
			}
		}
	} else {
		s = fmt.Sprintf("At %s, %s held the most PostgreSQL connections under load, %s each", tenantsLabel(large.Tenants), joinAnd(top), humanCount(int64(hs[0].conns)))
	}
	if len(rest) > 0 {
		s += ", against " + joinAnd(rest)
	}
	return s + "."
}

// coldTenantReading compares a cold tenant's first request with the same
// request again, at the largest size.
func coldTenantReading(runs []SizeRun, names []string) string {
	large := runs[len(runs)-1]
	var parts []string
	for _, name := range names {
		s, ok := strategyAt(large, name)
		if !ok || s.ColdFirst <= 0 || s.ColdSecond <= 0 {
			continue
		}
		v := float64(s.ColdFirst) / float64(s.ColdSecond)
		if withinNoise(v) {
			parts = append(parts, fmt.Sprintf("%s under %s, about the same as the second (%s)", humanDuration(s.ColdFirst), name, humanDuration(s.ColdSecond)))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s under %s, %s the second (%s)", humanDuration(s.ColdFirst), name, humanRatio(v), humanDuration(s.ColdSecond)))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("At %s, a cold tenant's first request took %s; one request each, so a single sample rather than a distribution.",
		tenantsLabel(large.Tenants), strings.Join(parts, "; "))
}

// crossTenantReading gives the cross-tenant report's median at the
// largest size, fastest first, and which tenants it could not reach.
func crossTenantReading(runs []SizeRun, names []string) string {
	large := runs[len(runs)-1]
	type timing struct {
		name   string
		median time.Duration
	}
	var ts []timing
	var failed, unreached []string
	for _, name := range names {
		s, ok := strategyAt(large, name)
		if !ok {
			continue
		}
		c := s.Report
		switch {
		case c.Error != "":
			failed = append(failed, name)
		case c.Runs > 0 && c.Median > 0:
			ts = append(ts, timing{name, c.Median})
		}
		if c.Unreachable > 0 {
			unreached = append(unreached, fmt.Sprintf("%s under %s", tenantsLabel(c.Unreachable), name))
		}
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].median < ts[j].median })
	var out []string
	if len(ts) > 0 {
		var parts []string
		for _, t := range ts {
			parts = append(parts, fmt.Sprintf("%s under %s", humanDuration(t.median), t.name))
		}
		out = append(out, fmt.Sprintf("At %s, the cross-tenant report took a median of %s.", tenantsLabel(large.Tenants), joinAnd(parts)))
	}
	if len(failed) > 0 {
		out = append(out, fmt.Sprintf("The cross-tenant report failed under %s at %s.", joinAnd(failed), tenantsLabel(large.Tenants)))
	}
	if len(unreached) > 0 {
		out = append(out, fmt.Sprintf("At %s, the report said it could not reach %s.", tenantsLabel(large.Tenants), joinAnd(unreached)))
	}
	return strings.Join(out, " ")
}
