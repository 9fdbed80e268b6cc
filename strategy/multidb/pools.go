package multidb

import (
	"container/list"
	"context"
	"database/sql"
	"fmt"
	"sync"
	"tenancy/strategy"
	"time"
)

// tenantPools holds one database/sql pool per tenant database, opened on
// first use and closed in least-recently-used order, so that a server with
// thousands of tenant databases does not hold thousands of connections.
//
// Two limits: a shared semaphore bounds the connections in use at once
// across all tenants (the budget: what the database's cores can serve), and
// maxOpen bounds the connections held open, idle ones included, across all
// tenants (what the server's max_connections allows). Idle connections are
// what make multidb fast: a tenant whose pool has one answers in one round
// trip, while one without pays for a new connection (a process forked on
// the server, authentication, statements prepared again), tens of times the
// cost of the query. So pools keep their idle connections, and when a new
// connection would pass maxOpen, the least recently used idle pools are
// closed to make room.
type tenantPools struct {
	open    func(database string) (*sql.DB, error)
	maxOpen int
	// idlePerPool is what each pool may keep idle (its own limit, restored
	// after trimming).
	idlePerPool int
	inUse       chan struct{}
	// share bounds the connections one tenant database may have in use,
	// so that one tenant whose queries hang (its tables locked, a runaway
	// report) cannot take the whole budget and with it every other tenant.
	share int
	// maxWait bounds the wait for a free connection: a server whose budget
	// is exhausted answers "unavailable" instead of queueing requests
	// without end.
	maxWait time.Duration

	mu    sync.Mutex
	pools map[string]*tenantPool
	lru   *list.List // of *tenantPool, most recent first
	// shares holds, for each tenant database with work in hand, the slots
	// of its share; it lives apart from pools because a pool may be
	// evicted and reopened while its tenant's requests wait.
	shares map[string]*tenantShare
}

type tenantShare struct {
	slots chan struct{}
	users int // callers holding or waiting for a slot
}

// tenantShareOf is how many of budget connections one tenant may use at
// once: half, so that the rest always serve the other tenants. A single
// busy tenant is then served by half the budget even when it is the only
// one with work (on two cores, 2 of 4 connections).
func tenantShareOf(budget int) int {
	return max(1, (budget+1)/2)
}

type tenantPool struct {
	database string
	db       *sql.DB
	refs     int
	elem     *list.Element
}

func newTenantPools(budget, maxOpen int, maxWait time.Duration, open func(database string) (*sql.DB, error)) *tenantPools {
	return &tenantPools{
		open:        open,
		maxOpen:     max(budget, maxOpen),
		idlePerPool: budget,
		maxWait:     maxWait,
		inUse:       make(chan struct{}, budget),
		share:       tenantShareOf(budget),
		pools:       map[string]*tenantPool{},
		lru:         list.New(),
		shares:      map[string]*tenantShare{},
	}
}

// acquire returns the pool of database and a release function that must be
// called when the caller's connection is back in the pool. While the
// tenant's share or the whole budget is in use it waits, at most maxWait
// in all and never past ctx.
func (p *tenantPools) acquire(ctx context.Context, database string) (*sql.DB, func(), error) {
	wait := time.NewTimer(p.maxWait)
	defer wait.Stop()
	share := p.joinShare(database)
	select {
	case share.slots <- struct{}{}:
	default:
		select {
		case share.slots <- struct{}{}:
		case <-wait.C:
			p.leaveShare(database, share, false)
			return nil, nil, fmt.Errorf("%w: database %q: its %d connections (its share of %d) stayed busy for %s", strategy.ErrTenantUnavailable, database, p.share, cap(p.inUse), p.maxWait)
		case <-ctx.Done():
			p.leaveShare(database, share, false)
			return nil, nil, fmt.Errorf("%w: waiting for a database connection: %w", strategy.ErrUnavailable, ctx.Err())
		}
	}
	select {
	case p.inUse <- struct{}{}:
	default:
		select {
		case p.inUse <- struct{}{}:
		case <-wait.C:
			p.leaveShare(database, share, true)
			return nil, nil, fmt.Errorf("%w: all %d tenant connections stayed busy for %s", strategy.ErrUnavailable, cap(p.inUse), p.maxWait)
		case <-ctx.Done():
			p.leaveShare(database, share, true)
			return nil, nil, fmt.Errorf("%w: waiting for a database connection: %w", strategy.ErrUnavailable, ctx.Err())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	tp, ok := p.pools[database]
	if !ok {
		db, err := p.open(database)
		if err != nil {
			<-p.inUse
			p.leaveShareLocked(database, share, true)
			return nil, nil, fmt.Errorf("open pool for %q: %w", database, err)
		}
		tp = &tenantPool{database: database, db: db}
		tp.elem = p.lru.PushFront(tp)
		p.pools[database] = tp
	} else {
		p.lru.MoveToFront(tp.elem)
	}
	tp.refs++
	p.evictLocked(tp.db.Stats().Idle == 0)
	var once sync.Once
	release := func() {
		once.Do(func() {
			p.mu.Lock()
			tp.refs--
			p.evictLocked(false)
			p.leaveShareLocked(database, share, true)
			p.mu.Unlock()
			<-p.inUse
		})
	}
	return tp.db, release, nil
}

// joinShare returns database's share, made when it has no other user.
func (p *tenantPools) joinShare(database string) *tenantShare {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.shares[database]
	if !ok {
		s = &tenantShare{slots: make(chan struct{}, p.share)}
		p.shares[database] = s
	}
	s.users++
	return s
}

// leaveShare gives back a slot of share (if held) and forgets the share
// when nobody else uses it.
func (p *tenantPools) leaveShare(database string, s *tenantShare, held bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leaveShareLocked(database, s, held)
}

func (p *tenantPools) leaveShareLocked(database string, s *tenantShare, held bool) {
	if held {
		<-s.slots
	}
	if s.users--; s.users == 0 {
		delete(p.shares, database)
	}
}

// evictLocked makes room when the caller is about to open a connection
// (connecting) and maxOpen are open already, and keeps at most maxOpen
// pools. Room is taken from the least recently used pools nobody is using:
// first their extra idle connections (a pool that served a burst keeps one
// warm connection), then, if that is not enough, whole pools.
func (p *tenantPools) evictLocked(connecting bool) {
	open := 0
	if connecting {
		for _, tp := range p.pools {
			open += tp.db.Stats().OpenConnections
		}
	}
	full := func() bool { return p.lru.Len() > p.maxOpen || (connecting && open >= p.maxOpen) }
	for e := p.lru.Back(); e != nil && connecting && full(); e = e.Prev() {
		tp := e.Value.(*tenantPool)
		if idle := tp.db.Stats().Idle; tp.refs == 0 && idle > 1 {
			tp.db.SetMaxIdleConns(1) // closes the others now
			tp.db.SetMaxIdleConns(p.idlePerPool)
			open -= idle - 1
		}
	}
	for e := p.lru.Back(); e != nil && full(); {
		prev := e.Prev()
		tp := e.Value.(*tenantPool)
		if tp.refs == 0 {
			open -= tp.db.Stats().OpenConnections
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

// TenantConnsFor is how many connections a multidb server keeps open when
// TenantConns is not set, given the connections the PostgreSQL server
// allows (max_connections less those reserved for superusers): as many as
// its pools can use, one working budget per tenant, but at most three
// quarters of what the server allows, leaving the rest for the admin,
// migrations and other clients; and at least the budget. Several servers
// on one cluster (a deploy that overlaps two) should set TenantConns.
//
// Fewer than the pools use means pools keep closing and reopening
// connections. 100 tenants at 16 concurrent requests settle at about 215
// (2 per tenant, as two requests for one tenant meet): allowed 222 of 300,
// 210 connections were opened in 18 s, 3,035 req/s; allowed 148, 558
// were, 2,628 req/s, p99 26 ms; the old fixed default of 64 made tenants
// take turns, each turn a new connection.
func TenantConnsFor(o strategy.Options, allowed int) int {
	return max(o.Budget(), min(max(1, o.TenantCount)*o.Budget(), allowed*3/4))
}
