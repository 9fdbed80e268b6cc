package seed

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"tenancy/strategy"
)

// Accounts finish generating in any order and come out in account order,
// the skipped ones generated (for the checksum) but left out.
func TestGenerateInOrderSendsAccountsInOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		accounts, workers int
		skip              map[int]bool
	}{
		{accounts: 1, workers: 1},
		{accounts: 40, workers: 1},
		{accounts: 40, workers: 8},
		{accounts: 40, workers: 8, skip: map[int]bool{0: true, 1: true, 7: true, 39: true}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d accounts, %d workers, skip %v", tt.accounts, tt.workers, tt.skip), func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			o.Accounts, o.Workers = tt.accounts, tt.workers
			r := &seedRun{opts: o, skip: tt.skip, digests: make([]Digest, o.Accounts)}
			out := make(chan *Account) // unbuffered: the workers run ahead of the reader
			go r.generateInOrder(context.Background(), out)
			var got, want []string
			for a := range out {
				got = append(got, a.Account.Slug)
			}
			for i := range tt.accounts {
				if !tt.skip[i] {
					want = append(want, strategy.Slug(i))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("accounts sent in order %v, want %v", got, want)
			}
			for i, d := range r.digests {
				if a := Generate(o, i, ""); d != AccountDigest(&a) {
					t.Errorf("digest of account %d is not that of the account generated", i)
				}
			}
		})
	}
}

// After a cancel it sends nothing more, and returns (closing out) once the
// workers have stopped, even with nobody reading.
func TestGenerateInOrderStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Accounts, o.Workers = 1000, 4
	r := &seedRun{opts: o, digests: make([]Digest, o.Accounts)}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *Account)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.generateInOrder(ctx, out)
	}()
	if a := <-out; a.Account.Slug != "tenant-0" {
		t.Errorf("first account sent is %s, want tenant-0", a.Account.Slug)
	}
	cancel()
	<-done // a hang here is the failure
	n := 0
	for range out {
		n++
	}
	if n != 0 {
		t.Errorf("%d accounts sent after the cancel, want 0", n)
	}
}
