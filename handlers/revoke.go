package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"tenancy/strategy"
)

// RevocationRefresh is how often a server reads the sign-outs recorded by
// other servers of the deployment: a cookie signed out on one server is
// refused there at once, and on the others within this long.
const RevocationRefresh = 5 * time.Second

// revocationOverlap is how far before the newest sign-out read each
// refresh reads again: a sign-out stamped earlier than one already read
// but committed after it (its statement was slower) is still found.
const revocationOverlap = time.Minute

// maxRevoked bounds the sign-outs a server holds (about 100 bytes each).
// Past it, the ones that would expire first are forgotten and every
// session expiring no later than they would is refused instead (floor):
// some users sign in again early, and no signed-out session comes back.
const maxRevoked = 100_000

// revocationStore is where sign-outs are recorded, the strategy.
type revocationStore interface {
	RevokeSession(ctx context.Context, id string, expires time.Time) error
	RevokedSessions(ctx context.Context, since time.Time) ([]strategy.RevokedSession, error)
}

// revocations is a server's copy of the deployment's signed-out sessions
// that have not expired: a map read under a read lock on every request
// (well under a microsecond, next to the cookie's decoding), refreshed
// from the store in the background, by the first request that finds it
// older than RevocationRefresh, so a server with no traffic reads
// nothing and there is no goroutine to stop.
type revocations struct {
	store revocationStore
	now   func() time.Time
	log   *slog.Logger
	max   int // maxRevoked, smaller in tests

	mu     sync.RWMutex
	ids    map[string]int64 // session id → when it expires, Unix seconds
	floor  int64            // sessions expiring at or before this are refused
	cursor time.Time        // the newest revocation read (the store's clock)

	loaded     atomic.Bool
	loading    sync.Mutex // the first read, which requests wait for
	refreshing atomic.Bool
	due        atomic.Int64 // when the next refresh is due, Unix nanoseconds
}

func newRevocations(store revocationStore, now func() time.Time, log *slog.Logger) *revocations {
	return &revocations{store: store, now: now, log: log, max: maxRevoked, ids: map[string]int64{}}
}

// has reports whether session id, which expires at expires, is signed
// out. Until the deployment's sign-outs have been read once, every
// session counts as signed out: a server just started must not accept a
// cookie another server has revoked (the first request reads them).
func (r *revocations) has(ctx context.Context, id string, expires int64) bool {
	if !r.loaded.Load() && !r.loadFirst(ctx) {
		return true
	}
	if r.now().UnixNano() >= r.due.Load() && r.refreshing.CompareAndSwap(false, true) {
		go func() {
			defer r.refreshing.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), RevocationRefresh)
			defer cancel()
			if err := r.refresh(ctx); err != nil {
				r.log.Warn("read the signed-out sessions; refusing only those known", "err", err)
			}
		}()
	}
	r.mu.RLock()
	_, revoked := r.ids[id]
	floor := r.floor
	r.mu.RUnlock()
	return revoked || expires <= floor
}

func (r *revocations) loadFirst(ctx context.Context) bool {
	r.loading.Lock()
	defer r.loading.Unlock()
	if r.loaded.Load() {
		return true
	}
	if err := r.refresh(ctx); err != nil {
		r.log.WarnContext(ctx, "read the signed-out sessions; refusing every session until they can be read", "err", err)
		return false
	}
	return true
}

// refresh reads the sign-outs since the last it read (with the overlap),
// and forgets those that have expired.
func (r *revocations) refresh(ctx context.Context) error {
	r.mu.RLock()
	since := r.cursor
	r.mu.RUnlock()
	if !since.IsZero() {
		since = since.Add(-revocationOverlap)
	}
	// Due again in RevocationRefresh whether or not this works: a store
	// that is down is not asked by every request.
	r.due.Store(r.now().Add(RevocationRefresh).UnixNano())
	rows, err := r.store.RevokedSessions(ctx, since)
	if err != nil {
		return fmt.Errorf("read the signed-out sessions: %w", err)
	}
	now := r.now().Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, row := range rows {
		if exp := row.Expires.Unix(); exp > r.floor {
			r.ids[row.ID] = exp
		}
		if row.RevokedAt.After(r.cursor) {
			r.cursor = row.RevokedAt
		}
	}
	for id, exp := range r.ids {
		if exp <= now {
			delete(r.ids, id)
		}
	}
	r.bound()
	r.loaded.Store(true)
	return nil
}

// add records a sign-out on this server, which refuses the session at
// once.
func (r *revocations) add(id string, expires int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if expires > r.floor {
		r.ids[id] = expires
	}
	r.bound()
}

// bound keeps the set within r.max, under r.mu: it forgets those that
// would expire first, down to nine tenths of r.max, and raises the floor
// past them.
func (r *revocations) bound() {
	if len(r.ids) <= r.max {
		return
	}
	exps := make([]int64, 0, len(r.ids))
	for _, exp := range r.ids {
		exps = append(exps, exp)
	}
	slices.Sort(exps)
	keep := r.max * 9 / 10
	r.floor = max(r.floor, exps[len(exps)-keep-1])
	for id, exp := range r.ids {
		if exp <= r.floor {
			delete(r.ids, id)
		}
	}
}

// revoke signs session v out: at once on this server, then for the
// others through the store (within RevocationRefresh).
func (r *revocations) revoke(ctx context.Context, v session) error {
	r.add(v.ID, v.Expires)
	if err := r.store.RevokeSession(ctx, v.ID, time.Unix(v.Expires, 0)); err != nil {
		return fmt.Errorf("record the sign-out for the other servers: %w", err)
	}
	return nil
}
