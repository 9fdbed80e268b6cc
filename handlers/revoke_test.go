package handlers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"tenancy/strategy"
)

// memoryStore is a revocationStore in memory, shared by the servers of a
// test as the database is by real ones.
type memoryStore struct {
	mu   sync.Mutex
	rows []strategy.RevokedSession
	now  func() time.Time
	down bool
}

func (m *memoryStore) RevokeSession(_ context.Context, id string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("store down")
	}
	m.rows = append(m.rows, strategy.RevokedSession{ID: id, Expires: expires, RevokedAt: m.now()})
	return nil
}

func (m *memoryStore) RevokedSessions(_ context.Context, since time.Time) ([]strategy.RevokedSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, errors.New("store down")
	}
	var out []strategy.RevokedSession
	for _, r := range m.rows {
		if !r.RevokedAt.Before(since) && r.Expires.After(m.now()) {
			out = append(out, r)
		}
	}
	return out, nil
}

// TestRevocations: a sign-out is refused at once on its server and, once
// it has refreshed, on another; a server that cannot read the sign-outs
// at start refuses every session until it can; a sign-out recorded late
// with an earlier time is still read (the overlap); and past its bound a
// server forgets the soonest-expiring sign-outs but refuses every session
// expiring no later.
func TestRevocations(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	store := &memoryStore{now: clock}
	log := slog.New(slog.DiscardHandler)
	a, b := newRevocations(store, clock, log), newRevocations(store, clock, log)
	ctx := context.Background()
	exp := now.Add(time.Hour).Unix()
	s1 := session{ID: "session-one-0123456789", Expires: exp}

	store.down = true
	if !b.has(ctx, s1.ID, exp) {
		t.Error("a server that could not read the sign-outs accepted a session")
	}
	store.down = false
	if b.has(ctx, s1.ID, exp) || a.has(ctx, s1.ID, exp) {
		t.Fatal("a session nobody signed out is refused")
	}
	if err := a.revoke(ctx, s1); err != nil {
		t.Fatal(err)
	}
	if !a.has(ctx, s1.ID, exp) {
		t.Error("the server that signed the session out still accepts it")
	}
	if err := b.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.has(ctx, s1.ID, exp) {
		t.Error("another server accepts a signed-out session after its refresh")
	}

	// A sign-out stamped before the newest b has read, committed after
	// that read: the overlap finds it.
	now = now.Add(time.Second)
	store.rows = append(store.rows, strategy.RevokedSession{ID: "late-session-0123456789", Expires: now.Add(time.Hour), RevokedAt: now.Add(-30 * time.Second)})
	if err := b.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.has(ctx, "late-session-0123456789", exp) {
		t.Error("a sign-out committed late, within the overlap, was missed")
	}

	// Expired sign-outs are forgotten.
	now = now.Add(2 * time.Hour)
	if err := b.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(b.ids); n != 0 {
		t.Errorf("after every session expired, %d sign-outs are still held", n)
	}

	// The bound: 10 sign-outs expiring one minute apart, room for 5.
	c := newRevocations(store, clock, log)
	c.max = 5
	c.loaded.Store(true)
	c.due.Store(now.Add(time.Hour).UnixNano())
	base := now.Add(time.Hour).Unix()
	for i := range 10 {
		c.add(string(rune('a'+i))+"-session-0123456789", base+int64(i)*60)
	}
	if len(c.ids) > c.max {
		t.Errorf("%d sign-outs held, want at most %d", len(c.ids), c.max)
	}
	for i := range 10 {
		id, e := string(rune('a'+i))+"-session-0123456789", base+int64(i)*60
		if !c.has(ctx, id, e) {
			t.Errorf("signed-out session %d (of 10) accepted after the bound", i)
		}
	}
	if c.has(ctx, "never-signed-out-0123456789", base+9*60) {
		t.Error("a session expiring after every forgotten sign-out is refused")
	}
	if !c.has(ctx, "never-signed-out-0123456789", base) {
		t.Error("a session expiring with the forgotten sign-outs is accepted")
	}
}
