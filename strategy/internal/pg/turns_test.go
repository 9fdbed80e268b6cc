package pg

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTurnsBoundTheCallersAtOnce(t *testing.T) {
	for _, n := range []int{1, 3} {
		tr := NewTurns(n)
		var running, most atomic.Int32
		var wg sync.WaitGroup
		release := make(chan struct{})
		for range 4 * n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = tr.Do(context.Background(), func() error {
					now := running.Add(1)
					for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
					}
					<-release
					running.Add(-1)
					return nil
				})
			}()
		}
		// Let the first n settle in their turns, and the rest pile up.
		for running.Load() < int32(n) {
			runtime.Gosched()
		}
		time.Sleep(10 * time.Millisecond)
		close(release)
		wg.Wait()
		if got := most.Load(); got != int32(n) {
			t.Errorf("turns(%d): at most %d callers ran at once, want %d", n, got, n)
		}
	}
}

func TestTurnsGiveUpWithTheContext(t *testing.T) {
	tr := NewTurns(1)
	held := make(chan struct{})
	done := make(chan struct{})
	go func() {
		_ = tr.Do(context.Background(), func() error { close(held); <-done; return nil })
	}()
	<-held
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := tr.Do(ctx, func() error { ran = true; return nil })
	close(done)
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("do with a cancelled context while the only turn is taken: err = %v, ran = %v; want context.Canceled, not run", err, ran)
	}
	want := errors.New("fn's error")
	if err := tr.Do(context.Background(), func() error { return want }); !errors.Is(err, want) {
		t.Errorf("do returned %v, want fn's error", err)
	}
}
