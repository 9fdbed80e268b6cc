package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"tenancy/models"
)

// TestSignInGuardLimitsFailures: failures are counted per account and per
// address; past the burst a sign-in is refused, with the time to wait,
// until the bucket refills; a success forgets the account's failures.
func TestSignInGuardLimitsFailures(t *testing.T) {
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	g, err := newSignInGuard(SignInLimits{AccountFailures: 3, AccountEvery: 10 * time.Second, AddressFailures: 5, AddressEvery: time.Minute}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	t0 := models.Account{ID: 1, Slug: "tenant-0"}
	alice, bob := accountKey(t0, "alice@example.com"), accountKey(t0, "bob@example.com")
	aliceElsewhere := accountKey(models.Account{ID: 2, Slug: "tenant-1"}, "alice@example.com")
	steps := []struct {
		what             string
		account, address string
		fail, succeed    bool
		advance          time.Duration
		refused          bool
		retryAtLeast     time.Duration
	}{
		{what: "first try", account: alice, address: "192.0.2.1", fail: true},
		{what: "second failure", account: alice, address: "192.0.2.1", fail: true},
		{what: "third failure", account: alice, address: "192.0.2.1", fail: true},
		{what: "fourth try: the account's burst is spent", account: alice, address: "192.0.2.1", refused: true, retryAtLeast: 9 * time.Second},
		{what: "the same account from another address", account: alice, address: "198.51.100.7", refused: true},
		{what: "the same email on another tenant", account: aliceElsewhere, address: "198.51.100.7"},
		{what: "10 s later one try more", account: alice, address: "198.51.100.7", advance: 10 * time.Second, fail: true},
		{what: "and then refused again", account: alice, address: "198.51.100.7", refused: true},
		{what: "another account from the first address", account: bob, address: "192.0.2.1", fail: true},
		{what: "the address's fifth failure", account: bob, address: "192.0.2.1", fail: true},
		{what: "the address's burst is spent", account: bob, address: "192.0.2.1", refused: true, retryAtLeast: 50 * time.Second},
		{what: "a minute on, bob signs in", account: bob, address: "192.0.2.1", advance: time.Minute, succeed: true},
		{what: "bob's failures are forgotten", account: bob, address: "198.51.100.7", fail: true},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		err := g.allow(st.account, st.address)
		var tooMany *errTooManyTries
		if got := errors.As(err, &tooMany); got != st.refused || (got && tooMany.retryAfter < st.retryAtLeast) {
			t.Fatalf("%s: allow = %v, want refused %v (retry after at least %s)", st.what, err, st.refused, st.retryAtLeast)
		}
		switch {
		case st.fail:
			g.failed(st.account, st.address)
		case st.succeed:
			g.succeeded(st.account)
		}
	}
}

// TestSignInGuardMemoryIsBounded: a flood of made-up emails and addresses
// is remembered up to the bound, no further.
func TestSignInGuardMemoryIsBounded(t *testing.T) {
	g, err := newSignInGuard(SignInLimits{Remembered: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		account, address := fmt.Sprintf("1\x00guess-%d@example.com", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		_ = g.allow(account, address)
		g.failed(account, address)
	}
	if g.accounts.Len() > 100 || g.addresses.Len() > 100 {
		t.Errorf("after 10,000 emails and addresses the guard remembers %d and %d, want at most 100 each", g.accounts.Len(), g.addresses.Len())
	}
}

// TestSignInGuardBoundsConcurrentChecks: no more password checks run at
// once than Checks, no more wait than Waiting, and a waiter gives up after
// Wait.
func TestSignInGuardBoundsConcurrentChecks(t *testing.T) {
	g, err := newSignInGuard(SignInLimits{Checks: 2, Waiting: 3, Wait: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	running, most := 0, 0
	work := func() {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
	}
	const n = 10
	errs := make(chan error, n)
	for range n {
		go func() { errs <- g.check(context.Background(), work) }()
	}
	// The five that find a slot or a place to wait stay; the other five
	// are turned away at once; the three waiting give up after Wait.
	busy := 0
	for range n - 2 {
		if err := <-errs; errors.Is(err, errBusy) {
			busy++
		} else {
			t.Errorf("check = %v while the slots were held, want errBusy", err)
		}
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("check holding a slot = %v, want nil", err)
		}
	}
	if most != 2 || busy != n-2 {
		t.Errorf("%d checks ran at once and %d were turned away, want 2 and %d", most, busy, n-2)
	}
	// Once free, checks run again.
	if err := g.check(context.Background(), func() {}); err != nil {
		t.Errorf("check after the others finished = %v, want nil", err)
	}
}

func TestClientAddress(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.1:4321":              "192.0.2.1",
		"[::ffff:192.0.2.1]:4321":     "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:4321": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":    "2001:db8:1:2::/64",
		"not an address":              "not an address",
	} {
		r := httptest.NewRequest("POST", "/login", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := clientAddress(r); got != want {
			t.Errorf("clientAddress(%q) = %q, want %q (X-Forwarded-For ignored)", remote, got, want)
		}
	}
}

// TestFoundOperatorsForget: an operator found is remembered, by email and
// id, for the ttl only, so a deleted one's sessions end within it.
func TestFoundOperatorsForget(t *testing.T) {
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	f := &foundOperators{ttl: 5 * time.Second, now: func() time.Time { return now }}
	if f.has("ops@example.com", 1) {
		t.Fatal("an operator never found is remembered")
	}
	f.add("ops@example.com", 1)
	for _, tt := range []struct {
		after time.Duration
		email string
		id    int64
		want  bool
	}{
		{0, "ops@example.com", 1, true},
		{0, "ops@example.com", 2, false}, // deleted, another made with the email
		{0, "other@example.com", 1, false},
		{4 * time.Second, "ops@example.com", 1, true},
		{5 * time.Second, "ops@example.com", 1, false},
	} {
		now = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC).Add(tt.after)
		if got := f.has(tt.email, tt.id); got != tt.want {
			t.Errorf("after %s, has(%q, %d) = %v, want %v", tt.after, tt.email, tt.id, got, tt.want)
		}
	}
	for i := range maxFoundOperators + 10 {
		f.add(fmt.Sprintf("op-%d@example.com", i), int64(i))
	}
	if len(f.seen) > maxFoundOperators {
		t.Errorf("remembers %d operators, want at most %d", len(f.seen), maxFoundOperators)
	}
}
