package seed

import (
	"context"
	"sync"
)

// aheadPerWorker bounds how many accounts each worker may generate past
// the one whose turn it is to be sent on, so that one big account
// holds up the order but not the workers, while memory stays bounded.
const aheadPerWorker = 4

// generateInOrder generates every account of the run on the run's workers,
// several at a time and finishing in any order, and sends the accounts to
// write on out in account order, then closes out. Ids are given in the
// order accounts are written, so they follow the accounts' order rather
// than the order in which workers happen to finish, and are the same in
// every run with any number of workers. Skipped accounts are generated too
// (the checksum covers them) but not sent. Once ctx is cancelled no new
// account is started and nothing more is sent; it returns when the
// workers have stopped.
func (r *seedRun) generateInOrder(ctx context.Context, out chan<- *Account) {
	defer close(out)
	workers := r.opts.EffectiveWorkers()
	type generated struct {
		i int
		a *Account
	}
	// A slot is taken before an index is handed out and given back when
	// the account is sent on: indexes are handed out in order, so the
	// slots are held by a run of consecutive accounts from the next one
	// to send, each of them with a worker, and the next one always comes.
	slots := make(chan struct{}, aheadPerWorker*workers)
	jobs := make(chan int)
	results := make(chan generated, workers)
	go func() {
		defer close(jobs)
		for i := range r.opts.Accounts {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				a := Generate(r.opts, i, r.hash)
				r.digests[i] = AccountDigest(&a)
				results <- generated{i, &a}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	// Read to the end even after a cancel, so that no worker is left
	// blocked on results.
	waiting := map[int]*Account{}
	next := 0
	for g := range results {
		waiting[g.i] = g.a
		for a, ok := waiting[next]; ok; a, ok = waiting[next] {
			delete(waiting, next)
			if !r.skip[next] {
				select {
				case out <- a:
				case <-ctx.Done():
				}
			}
			<-slots
			next++
		}
	}
}
