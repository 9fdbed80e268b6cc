package strategy

import (
	"container/list"
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// tenantPools holds one small database/sql pool per tenant database, opened
// on first use and closed in least-recently-used order, so a server with
// thousands of tenant databases does not hold thousands of pools. A shared
// semaphore bounds the connections in use across all tenants; each live pool
// keeps at most one idle connection, so the server holds at most
// 2 x budget connections however many tenants there are.
type tenantPools struct {
	open     func(database string) (*sql.DB, error)
	maxPools int
	inUse    chan struct{}
	// maxWait bounds the wait for a free connection: a server whose budget
	// is exhausted answers "unavailable" instead of queueing requests
	// without end.
	maxWait time.Duration

	mu    sync.Mutex
	pools map[string]*tenantPool
	lru   *list.List // of *tenantPool, most recent first
}

type tenantPool struct {
	database string
	db       *sql.DB
	refs     int
	elem     *list.Element
}

func newTenantPools(budget int, maxWait time.Duration, open func(database string) (*sql.DB, error)) *tenantPools {
	return &tenantPools{
		open:     open,
		maxPools: budget,
		maxWait:  maxWait,
		inUse:    make(chan struct{}, budget),
		pools:    map[string]*tenantPool{},
		lru:      list.New(),
	}
}

// acquire returns the pool of database and a release function that must be
// called when the caller's connection is back in the pool. While the whole
// budget is in use it waits, at most maxWait and never past ctx.
func (p *tenantPools) acquire(ctx context.Context, database string) (*sql.DB, func(), error) {
	select {
	case p.inUse <- struct{}{}:
	default:
		wait := time.NewTimer(p.maxWait)
		defer wait.Stop()
		select {
		case p.inUse <- struct{}{}:
		case <-wait.C:
			return nil, nil, fmt.Errorf("%w: all %d tenant connections stayed busy for %s", ErrUnavailable, cap(p.inUse), p.maxWait)
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%w: waiting for a database connection: %w", ErrUnavailable, ctx.Err())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	tp, ok := p.pools[database]
	if !ok {
		db, err := p.open(database)
		if err != nil {
			<-p.inUse
			return nil, nil, fmt.Errorf("open pool for %q: %w", database, err)
		}
		tp = &tenantPool{database: database, db: db}
		tp.elem = p.lru.PushFront(tp)
		p.pools[database] = tp
		p.evictLocked()
	} else {
		p.lru.MoveToFront(tp.elem)
	}
	tp.refs++
	var once sync.Once
	release := func() {
		once.Do(func() {
			p.mu.Lock()
			tp.refs--
			p.evictLocked()
			p.mu.Unlock()
			<-p.inUse
		})
	}
	return tp.db, release, nil
}

// evictLocked closes the least recently used pools that nobody is using
// until at most maxPools remain.
func (p *tenantPools) evictLocked() {
	for e := p.lru.Back(); e != nil && p.lru.Len() > p.maxPools; {
		prev := e.Prev()
		tp := e.Value.(*tenantPool)
		if tp.refs == 0 {
			p.lru.Remove(e)
			delete(p.pools, tp.database)
			go tp.db.Close() // waits for nothing: no connection of it is in use
		}
		e = prev
	}
}

// live returns how many tenant pools are open.
func (p *tenantPools) live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}

func (p *tenantPools) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for _, tp := range p.pools {
		if err := tp.db.Close(); err != nil && first == nil {
			first = err
		}
	}
	p.pools = map[string]*tenantPool{}
	p.lru.Init()
	return first
}
