// Package fleet runs one migration per tenant across many tenants: several
// at once, a few canaries first, and stopping at the first failure unless
// told to go on. The strategies say what migrating one tenant means; the
// order, the concurrency and the failure policy are the same everywhere.
package fleet

import (
	"context"
	"sync"

	"tenancy/strategy"
)

// Run migrates each of reps (which name their tenants) with migrate, which
// fills in the report it is given (reps[i]), and returns reps. The first o.Canary
// go first; if any of them fails, no other tenant is attempted. After
// them, up to o.Jobs tenants (defaultJobs when o.Jobs is 0) are migrated at
// once, in order; unless o.Continue is set, the first failure stops the
// run: tenants already started finish, and the rest are reported as not
// attempted (Skipped says why), as are those left when ctx ends. done is
// called with each report as it is made (for progress), one at a time.
func Run(ctx context.Context, reps []strategy.DatabaseReport, o strategy.MigrateOptions, defaultJobs int,
	migrate func(ctx context.Context, i int, rep *strategy.DatabaseReport), done func(strategy.DatabaseReport)) []strategy.DatabaseReport {
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = defaultJobs
	}
	var mu sync.Mutex // guards stopped and calls to done
	stopped := ""     // why the tenants not started are not attempted
	report := func(rep strategy.DatabaseReport) {
		mu.Lock()
		defer mu.Unlock()
		done(rep)
	}
	started := make([]bool, len(reps))
	isStopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if stopped == "" && ctx.Err() != nil {
			stopped = "not attempted: interrupted"
		}
		return stopped != ""
	}
	begin := func(i int) bool {
		if isStopped() {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		started[i] = true
		return true
	}
	runRange := func(from, to int, stopOnFailure bool) {
		work := make(chan int)
		var wg sync.WaitGroup
		for range min(jobs, to-from) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					// Checked here, not only when i was handed out: the
					// failure that stops the run may come while i waits.
					if !begin(i) {
						continue
					}
					migrate(ctx, i, &reps[i])
					if reps[i].Err != nil && stopOnFailure {
						mu.Lock()
						if stopped == "" {
							stopped = "not attempted: " + reps[i].Name() + " failed first"
						}
						mu.Unlock()
					}
					report(reps[i])
				}
			}()
		}
		for i := from; i < to && !isStopped(); i++ {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	canary := min(max(o.Canary, 0), len(reps))
	runRange(0, canary, true)
	if stopped != "" {
		stopped = "not attempted: a canary failed"
	} else {
		runRange(canary, len(reps), !o.Continue)
	}
	for i := range reps {
		if !started[i] {
			reps[i].Skipped = stopped
			report(reps[i])
		}
	}
	return reps
}
