package seed

import (
	"context"
	"sync"
)

// accountOrder lets the workers take one step each, the step that gives an
// account its ids, in account order, while they generate and load in
// parallel: ids then follow the accounts' order, not the order in which
// workers happen to finish, and so are the same in every run with any
// number of workers. Accounts in skip take no turn.
//
// A worker waits only for the accounts before its own, which the workers
// took before it (onWorkers hands out indexes in order), so the wait is
// for at most the generation of a few accounts.
type accountOrder struct {
	skip map[int]bool

	mu      sync.Mutex
	next    int                   // the account whose turn it is
	waiting map[int]chan struct{} // closed when that account's turn comes
}

func newAccountOrder(skip map[int]bool) *accountOrder {
	o := &accountOrder{skip: skip, waiting: map[int]chan struct{}{}}
	o.moveTo(0)
	return o
}

// wait returns once it is account i's turn, or with ctx's error first.
func (o *accountOrder) wait(ctx context.Context, i int) error {
	o.mu.Lock()
	if o.next == i {
		o.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	o.waiting[i] = turn
	o.mu.Unlock()
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// done ends account i's turn, which must have begun, and begins the next
// account's.
func (o *accountOrder) done(i int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.moveTo(i + 1)
}

// moveTo gives the turn to account i, or the first after it not skipped.
func (o *accountOrder) moveTo(i int) {
	for o.skip[i] {
		i++
	}
	o.next = i
	if turn, ok := o.waiting[i]; ok {
		close(turn)
		delete(o.waiting, i)
	}
}
