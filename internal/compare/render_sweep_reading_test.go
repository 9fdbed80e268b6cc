package compare

import (
	"strings"
	"testing"
	"time"
)

func sweepReadingOf(t *testing.T, r Report) string {
	t.Helper()
	return section(mustMarkdown(t, r), "### Reading the sweep")
}

// eachStrategy applies f to every strategy at every size.
func eachStrategy(r *Report, f func(size int, s *StrategyResult)) {
	for i := range r.Sweep {
		for j := range r.Sweep[i].Strategies {
			f(r.Sweep[i].Tenants, &r.Sweep[i].Strategies[j])
		}
	}
}

// TestSweepReading: each sentence follows from the fixture's figures, and
// is left out when they are missing; turning the figures round turns the
// sentence round.
func TestSweepReading(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mutate    func(r *Report)
		want, not []string
	}{
		{"the fixture", func(*Report) {},
			[]string{
				"From 10 to 1,000 tenants (100× as many), setup (create + migrate) went from 2 s to 5m0s under multidb (150×), from 500 ms to 30 s under multischema (60×) and from 300 ms to 500 ms under singleschema (1.7×); it grew fastest under multidb, more than in proportion to the tenants.",
				"each added tenant brought about this many catalog entries (pg\\_class rows): 350 under multidb (4,200 → 350,700), 46 under multischema (810 → 46,350) and none under singleschema (400 → 400).",
				"Under Zipf traffic (s = 1.1), throughput at 1,000 tenants against 10 tenants: fell to 0.4× under multidb (3,000 → 1,200 req/s); held up under multischema (2,500 → 2,300 req/s, within the noise); held up under singleschema (4,000 → 4,100 req/s, within the noise).",
				"At 1,000 tenants, multidb held the most PostgreSQL connections under load, 250 (30 at 10 tenants), against 14 under multischema and 9 under singleschema.",
				"At 1,000 tenants, a cold tenant's first request took 90 ms under multidb, 30× the second (3 ms)",
				"At 1,000 tenants, the cross-tenant report took a median of 150 ms under singleschema, 900 ms under multischema and 3 s under multidb.",
				"At 1,000 tenants, the report said it could not reach 3 tenants under multidb.",
			},
			nil},
		{"multischema's setup grows fastest", func(r *Report) { atSize(r, 1000, "multischema").Setup = 20 * time.Minute },
			[]string{"from 500 ms to 20m0s under multischema (2,400×)", "it grew fastest under multischema, more than in proportion"},
			[]string{"fastest under multidb"}},
		{"two setups grow about as fast", func(r *Report) { atSize(r, 1000, "multischema").Setup = 70 * time.Second },
			[]string{"it grew about as fast under multidb and multischema (within the noise)"},
			[]string{"fastest under"}},
		{"setup grows in proportion", func(r *Report) { atSize(r, 1000, "multidb").Setup = 200 * time.Second },
			[]string{"it grew fastest under multidb, in proportion to the tenants."},
			[]string{"more than in proportion"}},
		{"setup missing at the largest size", func(r *Report) {
			eachStrategy(r, func(size int, s *StrategyResult) {
				if size == 1000 {
					s.Setup = 0
				}
			})
		}, nil, []string{"setup (create + migrate) went", "grew fastest"}},
		{"no catalog counted", func(r *Report) { eachStrategy(r, func(_ int, s *StrategyResult) { s.CatalogEntries = 0 }) },
			nil, []string{"catalog entries"}},
		{"Zipf throughput rises under multidb", func(r *Report) { atSize(r, 1000, "multidb").Loads[1].Throughput = 6000 },
			[]string{"rose to 2.0× under multidb (3,000 → 6,000 req/s)"}, []string{"fell to"}},
		{"no Zipf load", func(r *Report) { eachStrategy(r, func(_ int, s *StrategyResult) { withoutLoad(s, LoadZipf) }) },
			nil, []string{"Under Zipf traffic", "Zipf loads"}},
		{"Zipf loads too short", func(r *Report) {
			eachStrategy(r, func(_ int, s *StrategyResult) { s.Loads[1].Elapsed = 5 * time.Second })
		}, []string{"The Zipf loads under multidb, multischema and singleschema were too short to compare across sizes"},
			[]string{"fell to", "held up"}},
		{"Zipf parameter unknown", func(r *Report) { r.Options.Zipf = 0 },
			[]string{"Under Zipf traffic, throughput at 1,000 tenants"}, []string{"s = "}},
		{"connections unknown", func(r *Report) { eachStrategy(r, func(_ int, s *StrategyResult) { s.ServerConns = 0 }) },
			nil, []string{"held the most"}},
		{"two hold the most", func(r *Report) { atSize(r, 1000, "multischema").ServerConns = 250 },
			[]string{"multidb and multischema held the most PostgreSQL connections under load, 250 each, against 9 under singleschema."}, nil},
		{"cold tenant unmeasured", func(r *Report) { eachStrategy(r, func(_ int, s *StrategyResult) { s.ColdSecond = 0 }) },
			nil, []string{"cold tenant's first request"}},
		{"report failed", func(r *Report) {
			atSize(r, 1000, "multidb").Report = CrossTenantReport{Error: "deadline exceeded"}
		}, []string{"took a median of 150 ms under singleschema and 900 ms under multischema.", "The cross-tenant report failed under multidb at 1,000 tenants."},
			[]string{"could not reach"}},
		{"one size: nothing grows", func(r *Report) { r.Sweep = r.Sweep[2:] },
			[]string{"At 1,000 tenants, multidb held the most PostgreSQL connections under load, 250, against"},
			[]string{"From 10", "Under Zipf traffic", "catalog entries", "(30 at 10 tenants)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sweepReport()
			tc.mutate(&r)
			got := sweepReadingOf(t, r)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("sweep reading has no %q:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("sweep reading says %q, which the figures do not support:\n%s", n, got)
				}
			}
		})
	}
}

// TestSweepReadingEmpty: a sweep with no figures has no reading at all,
// not a heading over nothing.
func TestSweepReadingEmpty(t *testing.T) {
	r := Report{Sweep: []SizeRun{
		{Tenants: 10, Strategies: []StrategyResult{{Name: "multidb"}, {Name: "singleschema"}}},
		{Tenants: 100, Strategies: []StrategyResult{{Name: "multidb"}, {Name: "singleschema"}}},
	}}
	if md := mustMarkdown(t, r); strings.Contains(md, "Reading the sweep") {
		t.Errorf("WriteMarkdown: a reading of a sweep without figures:\n%s", section(md, "### Reading the sweep"))
	}
}
