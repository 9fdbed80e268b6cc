// Package tenantcache remembers which account (or, in multidb, which
// directory entry) a slug names, so that resolving the tenant of a request
// is not a database round trip every time.
package tenantcache

import (
	"context"
	"sync"
	"time"
)

// Cache remembers which account a slug names, so that resolving the
// tenant of a request is not a database round trip every time: the server
// looks a tenant up on every request, and accounts change rarely.
//
// An entry lives for ttl. Within that time a deleted account may still be
// resolved by its slug; its id then scopes the data to nothing, because
// account ids are never reused (Admin.Reset keeps the sequence going). A
// slug that now names another account would be served the cached id's
// rows: the list page checks every row's account against the slug and
// forgets the entry on a mismatch (see singleschema's ListSubtasks). Only hits
// are kept, so a flood of made-up slugs cannot fill it; at most max
// entries, after which expired ones are dropped, or all of them.
type Cache[V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cached[V]
}

type cached[V any] struct {
	value   V
	expires time.Time
}

// TTL bounds how long a change to an account's slug takes to
// reach a running server.
const TTL = 10 * time.Second

// MaxEntries bounds the cache at a few MB.
const MaxEntries = 100_000

// New returns a cache whose entries live for ttl, at most max of them.
func New[V any](ttl time.Duration, max int) *Cache[V] {
	return &Cache[V]{ttl: ttl, max: max, now: time.Now, entries: map[string]cached[V]{}}
}

// Get returns the cached account of slug, or loads it and caches it.
func (c *Cache[V]) Get(ctx context.Context, slug string, load func(context.Context, string) (V, error)) (V, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[slug]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.value, nil
	}
	v, err := load(ctx, slug)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[slug] = cached[V]{value: v, expires: now.Add(c.ttl)}
	return v, nil
}

// Forget drops slug's entry, so that the next lookup asks the database.
func (c *Cache[V]) Forget(slug string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, slug)
}
