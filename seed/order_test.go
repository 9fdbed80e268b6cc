package seed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// Workers that reach their turn in any order take it in account order,
// passing over the skipped accounts.
func TestAccountOrderTakesTurnsInAccountOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		accounts int
		skip     map[int]bool
	}{
		{accounts: 1},
		{accounts: 20},
		{accounts: 20, skip: map[int]bool{0: true, 1: true, 7: true, 19: true}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d accounts, skip %v", tt.accounts, tt.skip), func(t *testing.T) {
			t.Parallel()
			o := newAccountOrder(tt.skip)
			var taken []int // appended in turn only
			var wg sync.WaitGroup
			// Started last account first, so that most have to wait.
			for i := tt.accounts - 1; i >= 0; i-- {
				if tt.skip[i] {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := o.wait(context.Background(), i); err != nil {
						t.Errorf("wait(%d): %v", i, err)
						return
					}
					taken = append(taken, i)
					o.done(i)
				}()
			}
			wg.Wait()
			var want []int
			for i := range tt.accounts {
				if !tt.skip[i] {
					want = append(want, i)
				}
			}
			if !slices.Equal(taken, want) {
				t.Errorf("turns taken in order %v, want %v", taken, want)
			}
		})
	}
}

// A cancelled run releases the workers waiting for a turn that will not
// come.
func TestAccountOrderWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	o := newAccountOrder(nil)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error)
	go func() { errs <- o.wait(ctx, 3) }()
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("wait(3) after the cancel = %v, want context.Canceled", err)
	}
	if err := o.wait(context.Background(), 0); err != nil {
		t.Errorf("wait(0), the first turn = %v, want nil", err)
	}
}
