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
// first use, under an explicit policy, so that a server with a thousand
// tenant databases holds a bounded number of connections and spends them
// on the tenants that are busy now:
//
//   - a working budget (inUse, DB_MAX_CONNS): the connections in use at
//     once across all tenants, what the database's cores can serve; one
//     tenant may use its share of it (half), so one tenant whose queries
//     hang cannot take every other tenant down with it;
//   - a global budget of held connections (maxOpen, MULTIDB_OPEN_CONNS),
//     idle ones included, what the PostgreSQL server's max_connections
//     allows this server;
//   - an idle limit per tenant that follows its recent use: a pool keeps
//     idle as many connections as its tenant had in use at once in the
//     last one to two windows (idleWindow), at least one. A tenant that
//     had a burst keeps its connections while it stays busy and gives
//     them back once it calms down, instead of holding the budget's worth
//     for as long as it is not evicted;
//   - least-recently-used eviction, segmented: when a new connection
//     would pass maxOpen, the least recently used pools nobody is using
//     give up their extra idle connections first, then whole pools are
//     closed, those on probation before those protected. A tenant's pool
//     starts on probation and is protected once used again while open, a
//     second or more after it opened, or at once when its tenant was
//     evicted a short while ago (a ghost list of a name per four
//     connections held). Under skewed traffic this keeps
//     the busy tenants' connections from being pushed out by a stream of
//     tenants seen once, as plain LRU lets them be (segmented LRU, or
//     2Q without its first FIFO).
//
// Idle connections are what make multidb fast: a tenant whose pool has one
// answers in one round trip, while one without pays for a new connection
// (a process forked on the server, authentication, statements prepared
// again), tens of times the cost of the query.
type tenantPools struct {
	open    func(database string) (*sql.DB, error)
	maxOpen int
	// maxIdle is the most a pool may keep idle: the working budget.
	maxIdle int
	inUse   chan struct{}
	// share bounds the connections one tenant database may have in use.
	share int
	// maxWait bounds the wait for a free connection: a server whose budget
	// is exhausted answers "unavailable" instead of queueing requests
	// without end.
	maxWait time.Duration
	// idleWindow is how long a tenant's peak use counts towards its idle
	// limit (between one and two windows).
	idleWindow time.Duration
	now        func() time.Time

	mu    sync.Mutex
	pools map[string]*tenantPool
	lru   *list.List // of *tenantPool, most recent first
	// shares holds, for each tenant database with work in hand, the slots
	// of its share; it lives apart from pools because a pool may be
	// evicted and reopened while its tenant's requests wait.
	shares map[string]*tenantShare
	// ghosts are the databases whose pools were closed most recently,
	// newest first, at most ghostsOf(maxOpen) of them: a tenant that comes
	// back while still here is busy enough to protect.
	ghosts  *list.List // of string
	ghostOf map[string]*list.Element
	// segmented turns probation on; off, eviction is plain LRU (for the
	// benchmark that compares the two).
	segmented bool
	// counts of what the policy did, for /metrics and compare.
	waits        int64         // callers that waited for a slot of their share or the budget
	waited       time.Duration // how long, all told
	evictedPools int64         // pools closed to make room
	trimmedConns int64         // idle connections closed to make room or to follow use
	// retired sums the database/sql figures of pools closed since start,
	// so that totals (connections opened and closed, waits) survive
	// eviction.
	retired sql.DBStats
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
	// idleLimit is what db was last given as SetMaxIdleConns.
	idleLimit int
	// openedAt is when the pool was opened: a use within promoteAfter of
	// it is the same request's, not the tenant coming back.
	openedAt time.Time
	// protected: used again while open, or back soon after eviction;
	// evicted only when no pool on probation can be.
	protected bool
	// peak is the most refs at once since windowStart, prevPeak in the
	// window before it.
	peak, prevPeak int
	windowStart    time.Time
}

// promoteAfter is how long after its pool opened a tenant's next use
// counts as the tenant coming back. One request may use the pool more
// than once (the tenant looked up, then its page): promoted on that, every
// tenant seen once was protected, and eviction was LRU again with the
// newest pools, the only ones left on probation, closed between a
// request's two uses (1,314 connections opened for 1,050 requests at
// 1,000 tenant databases).
const promoteAfter = time.Second

// ghostsOf sizes the ghost list for maxOpen connections: a quarter as
// many names. A longer list protects nearly every tenant that comes back
// at all, and eviction is LRU again: for 1,000 tenants under Zipf s=1.1
// and 150 pools, a quarter missed about 21% of requests, as many as the
// pools 22%, four times as many 26%, plain LRU 27%
// (TestSegmentedEvictionUnderZipf).
func ghostsOf(maxOpen int) int { return max(1, maxOpen/4) }

// idleWindow is how long a tenant's busiest moment keeps its connections
// idle: long enough that a tenant served steadily keeps what it uses
// between requests, short enough that a burst's connections go back within
// a minute, before database/sql's own idle timeout (pg.OpenPool).
const idleWindow = 10 * time.Second

func newTenantPools(budget, maxOpen int, maxWait time.Duration, open func(database string) (*sql.DB, error)) *tenantPools {
	return &tenantPools{
		open:       open,
		maxOpen:    max(budget, maxOpen),
		maxIdle:    budget,
		maxWait:    maxWait,
		idleWindow: idleWindow,
		now:        time.Now,
		inUse:      make(chan struct{}, budget),
		share:      tenantShareOf(budget),
		pools:      map[string]*tenantPool{},
		lru:        list.New(),
		shares:     map[string]*tenantShare{},
		ghosts:     list.New(),
		ghostOf:    map[string]*list.Element{},
		segmented:  true,
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
	// A caller that finds its share or the budget full waits; how often
	// and how long is what /metrics reports as waiting for a connection.
	var waitStart time.Time
	defer func() {
		if !waitStart.IsZero() {
			p.mu.Lock()
			p.waits++
			p.waited += time.Since(waitStart)
			p.mu.Unlock()
		}
	}()
	select {
	case share.slots <- struct{}{}:
	default:
		waitStart = time.Now()
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
		if waitStart.IsZero() {
			waitStart = time.Now()
		}
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
		tp = &tenantPool{database: database, db: db, idleLimit: p.maxIdle, windowStart: p.now(), openedAt: p.now()}
		if g, ok := p.ghostOf[database]; ok {
			tp.protected = true
			p.ghosts.Remove(g)
			delete(p.ghostOf, database)
		}
		tp.elem = p.lru.PushFront(tp)
		p.pools[database] = tp
	} else {
		if p.now().Sub(tp.openedAt) >= promoteAfter {
			tp.protected = true
		}
		p.lru.MoveToFront(tp.elem)
	}
	tp.refs++
	p.followUseLocked(tp)
	p.evictLocked(tp.db.Stats().Idle == 0)
	var once sync.Once
	release := func() {
		once.Do(func() {
			p.mu.Lock()
			tp.refs--
			p.followUseLocked(tp)
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

// followUseLocked sets tp's idle limit to the most connections its tenant
// had in use at once in the current and the previous window, at least one.
// Lowering the limit closes the connections above it at once.
func (p *tenantPools) followUseLocked(tp *tenantPool) {
	now := p.now()
	if elapsed := now.Sub(tp.windowStart); elapsed >= p.idleWindow {
		tp.prevPeak = tp.peak
		if elapsed >= 2*p.idleWindow {
			tp.prevPeak = 0 // a whole window without use
		}
		tp.peak, tp.windowStart = tp.refs, now
	}
	tp.peak = max(tp.peak, tp.refs)
	limit := min(p.maxIdle, max(1, tp.peak, tp.prevPeak))
	if limit != tp.idleLimit {
		if idle := tp.db.Stats().Idle; idle > limit {
			p.trimmedConns += int64(idle - limit)
		}
		tp.db.SetMaxIdleConns(limit)
		tp.idleLimit = limit
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
			tp.idleLimit = 1
			p.trimmedConns += int64(idle - 1)
			open -= idle - 1
		}
	}
	// Pools on probation go first; with segmented off, every pool is
	// evicted in the first pass, as plain LRU.
	for _, protected := range []bool{false, true} {
		for e := p.lru.Back(); e != nil && full(); {
			prev := e.Prev()
			tp := e.Value.(*tenantPool)
			if tp.refs == 0 && (tp.protected == protected || !p.segmented) {
				open -= tp.db.Stats().OpenConnections
				p.evictLocked1(e, tp)
			}
			e = prev
		}
	}
}

// evictLocked1 closes tp's pool and remembers its database as a ghost.
func (p *tenantPools) evictLocked1(e *list.Element, tp *tenantPool) {
	p.lru.Remove(e)
	delete(p.pools, tp.database)
	p.evictedPools++
	p.retire(tp.db.Stats())
	go tp.db.Close() // waits for nothing: no connection of it is in use
	if p.segmented {
		p.ghostOf[tp.database] = p.ghosts.PushFront(tp.database)
		for p.ghosts.Len() > ghostsOf(p.maxOpen) {
			oldest := p.ghosts.Back()
			delete(p.ghostOf, oldest.Value.(string))
			p.ghosts.Remove(oldest)
		}
	}
}

// retire adds the figures of a pool being closed to the totals; its open
// connections count as closed.
func (p *tenantPools) retire(st sql.DBStats) {
	r := &p.retired
	r.WaitCount += st.WaitCount
	r.WaitDuration += st.WaitDuration
	r.MaxIdleClosed += st.MaxIdleClosed + int64(st.OpenConnections)
	r.MaxIdleTimeClosed += st.MaxIdleTimeClosed
	r.MaxLifetimeClosed += st.MaxLifetimeClosed
}

// forget closes database's pool, if open, without remembering it as a
// ghost: its tenant has left the directory. Connections in use finish
// their work first (sql.DB.Close waits for them).
func (p *tenantPools) forget(database string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tp, ok := p.pools[database]
	if !ok {
		return
	}
	p.lru.Remove(tp.elem)
	delete(p.pools, database)
	p.retire(tp.db.Stats())
	go tp.db.Close()
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
// migrations and other clients, shared among the o.Servers servers that
// use the cluster; and at least the budget.
//
// Fewer than the pools use means pools keep closing and reopening
// connections. 100 tenants at 16 concurrent requests settle at about 215
// (2 per tenant, as two requests for one tenant meet): allowed 222 of 300,
// 210 connections were opened in 18 s, 3,035 req/s; allowed 148, 558
// were, 2,628 req/s, p99 26 ms; the old fixed default of 64 made tenants
// take turns, each turn a new connection.
func TenantConnsFor(o strategy.Options, allowed int) int {
	return max(o.Budget(), min(max(1, o.TenantCount)*o.Budget(), allowed*3/4/max(1, o.Servers)))
}

// poolFigures is what the pools hold and have done since the server
// started, summed over every tenant pool, closed ones included.
type poolFigures struct {
	Pools, Open, Idle, InUse int
	// WaitCount and WaitDuration: callers that waited for a slot of their
	// tenant's share or the working budget, and database/sql's own waits
	// for a connection of a pool.
	WaitCount      int64
	WaitDuration   time.Duration
	Opened, Closed int64
	EvictedPools   int64 // closed whole to make room
	TrimmedConns   int64 // idle connections closed to make room or to follow use
}

func (p *tenantPools) figures() poolFigures {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := poolFigures{Pools: p.lru.Len(), EvictedPools: p.evictedPools, TrimmedConns: p.trimmedConns}
	add := func(st sql.DBStats, live bool) {
		if live {
			f.Open += st.OpenConnections
			f.Idle += st.Idle
			f.InUse += st.InUse
		}
		f.WaitCount += st.WaitCount
		f.WaitDuration += st.WaitDuration
		f.Closed += st.MaxIdleClosed + st.MaxIdleTimeClosed + st.MaxLifetimeClosed
	}
	f.WaitCount, f.WaitDuration = p.waits, p.waited
	add(p.retired, false)
	for _, tp := range p.pools {
		add(tp.db.Stats(), true)
	}
	f.Opened = int64(f.Open) + f.Closed
	return f
}
