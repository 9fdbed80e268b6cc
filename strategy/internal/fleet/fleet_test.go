package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"tenancy/strategy"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		o       strategy.MigrateOptions
		fails   []int // tenants whose migration fails
		want    string
		because string // why the others were not attempted, if any were
	}{
		{"every tenant current or applied", 5, strategy.MigrateOptions{Jobs: 2}, nil, "AAAAA", ""},
		{"stops at the first failure", 6, strategy.MigrateOptions{Jobs: 1}, []int{2}, "AAF---", "tenant-2 (db-2) failed first"},
		{"continue goes past failures", 6, strategy.MigrateOptions{Jobs: 1, Continue: true}, []int{1, 4}, "AFAAFA", ""},
		{"a failed canary stops the run, even with continue", 6, strategy.MigrateOptions{Jobs: 1, Canary: 2, Continue: true}, []int{1}, "AF----", "a canary failed"},
		{"canaries that pass let the rest run", 6, strategy.MigrateOptions{Jobs: 3, Canary: 2}, nil, "AAAAAA", ""},
		{"a canary count past the fleet migrates all", 3, strategy.MigrateOptions{Canary: 10}, nil, "AAA", ""},
		{"failure after the canaries stops the rest", 6, strategy.MigrateOptions{Jobs: 1, Canary: 2}, []int{3}, "AAAF--", "tenant-3 (db-3) failed first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps := make([]strategy.DatabaseReport, tt.n)
			for i := range reps {
				reps[i].Tenant, reps[i].Database = strategy.Slug(i), fmt.Sprintf("db-%d", i)
			}
			var mu sync.Mutex
			var printed []string
			Run(context.Background(), reps, tt.o, 4, func(_ context.Context, i int, rep *strategy.DatabaseReport) {
				if slices.Contains(tt.fails, i) {
					rep.Err = errors.New("boom")
					return
				}
				rep.Applied = []string{"00002_x.sql"}
			}, func(rep strategy.DatabaseReport) {
				mu.Lock()
				printed = append(printed, rep.Tenant)
				mu.Unlock()
			})
			var got strings.Builder
			for _, r := range reps {
				got.WriteByte(map[string]byte{"applied": 'A', "failed": 'F', "not attempted": '-', "current": 'C'}[r.Status()])
				if r.Skipped != "" && !strings.Contains(r.Skipped, tt.because) {
					t.Errorf("%s not attempted because %q, want %q", r.Tenant, r.Skipped, tt.because)
				}
			}
			if got.String() != tt.want {
				t.Errorf("statuses = %s, want %s", got.String(), tt.want)
			}
			if len(printed) != tt.n {
				t.Errorf("done called for %d tenants, want every one of %d (those not attempted too)", len(printed), tt.n)
			}
		})
	}
}

// TestRunBoundsJobs: no more than Jobs tenants are migrated at once, and
// that many are (the fleet does not run one at a time).
func TestRunBoundsJobs(t *testing.T) {
	for _, jobs := range []int{1, 3} {
		t.Run(fmt.Sprint(jobs), func(t *testing.T) {
			var running, peak atomic.Int32
			gate := make(chan struct{})
			var once sync.Once
			reps := make([]strategy.DatabaseReport, 12)
			Run(context.Background(), reps, strategy.MigrateOptions{Jobs: jobs}, 8, func(_ context.Context, i int, rep *strategy.DatabaseReport) {
				now := running.Add(1)
				for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
				}
				if now == int32(jobs) {
					once.Do(func() { close(gate) })
				}
				<-gate // everyone waits until jobs are running at once
				running.Add(-1)
			}, func(strategy.DatabaseReport) {})
			if peak.Load() != int32(jobs) {
				t.Errorf("peak concurrency = %d, want %d", peak.Load(), jobs)
			}
		})
	}
}

// TestRunStopsWhenInterrupted: tenants not started when ctx ends are
// reported as not attempted, and the ones started finish.
func TestRunStopsWhenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	reps := make([]strategy.DatabaseReport, 5)
	Run(ctx, reps, strategy.MigrateOptions{Jobs: 1}, 4, func(_ context.Context, i int, rep *strategy.DatabaseReport) {
		rep.Applied = []string{"x"}
		if i == 1 {
			cancel()
		}
	}, func(strategy.DatabaseReport) {})
	for i, r := range reps {
		want := "applied"
		if i > 1 {
			want = "not attempted"
		}
		if r.Status() != want || (want == "not attempted" && !strings.Contains(r.Skipped, "interrupted")) {
			t.Errorf("tenant %d: %s (%q), want %s", i, r.Status(), r.Skipped, want)
		}
	}
}
