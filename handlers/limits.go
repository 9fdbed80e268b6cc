package handlers

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"tenancy/models"
)

// SignInLimits bound password guessing and what sign-ins may cost the
// pages. The zero value takes every default.
type SignInLimits struct {
	// AccountFailures failed sign-ins of one email on one tenant are
	// allowed in a burst, then one more every AccountEvery (5, 12 s: five
	// a minute). A success forgets the account's failures.
	AccountFailures int
	AccountEvery    time.Duration
	// AddressFailures failed sign-ins from one client address (an IPv6
	// client's /64) are allowed in a burst, then one more every
	// AddressEvery (20, 3 s: twenty a minute), whatever the emails.
	AddressFailures int
	AddressEvery    time.Duration
	// Remembered bounds how many accounts and how many addresses are
	// tracked (10,000 each); past it the least recently seen are
	// forgotten, so a flood of made-up emails costs bounded memory.
	Remembered int
	// Checks is how many password checks run at once (half the CPUs,
	// at least one): each holds a core for about 0.1 s, and pages must
	// keep the rest.
	Checks int
	// Waiting is how many more sign-ins may wait for a check (64); past
	// it, or after waiting Wait (5 s), a sign-in is told to retry.
	Waiting int
	Wait    time.Duration
}

func (l SignInLimits) withDefaults() SignInLimits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.AccountFailures, 5)
	defDur(&l.AccountEvery, 12*time.Second)
	def(&l.AddressFailures, 20)
	defDur(&l.AddressEvery, 3*time.Second)
	def(&l.Remembered, 10_000)
	def(&l.Checks, max(1, runtime.GOMAXPROCS(0)/2))
	def(&l.Waiting, 64)
	defDur(&l.Wait, 5*time.Second)
	return l
}

// errTooManyTries is a sign-in refused before its password is checked.
type errTooManyTries struct {
	retryAfter time.Duration
	message    string
}

func (e *errTooManyTries) Error() string { return e.message }

// retryAfterSeconds is Retry-After's value: whole seconds, at least one.
func (e *errTooManyTries) retryAfterSeconds() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.retryAfter.Seconds()))))
}

// signInGuard keeps the limits of one server. Its memory is bounded by
// Remembered entries per kind, whatever the clients send.
type signInGuard struct {
	limits    SignInLimits
	now       func() time.Time
	mu        sync.Mutex // the caches are safe alone; this makes check-then-take one step
	accounts  *lru.Cache[string, *rate.Limiter]
	addresses *lru.Cache[string, *rate.Limiter]
	checks    chan struct{} // a slot per password check running
	waiting   chan struct{} // a slot per sign-in waiting for a check
}

func newSignInGuard(l SignInLimits, now func() time.Time) (*signInGuard, error) {
	l = l.withDefaults()
	if now == nil {
		now = time.Now
	}
	accounts, err := lru.New[string, *rate.Limiter](l.Remembered)
	if err != nil {
		return nil, err
	}
	addresses, err := lru.New[string, *rate.Limiter](l.Remembered)
	if err != nil {
		return nil, err
	}
	return &signInGuard{
		limits: l, now: now, accounts: accounts, addresses: addresses,
		checks: make(chan struct{}, l.Checks), waiting: make(chan struct{}, l.Waiting),
	}, nil
}

// accountKey names an email on a tenant: the same email on two tenants is
// two accounts. Emails are compared as sign-in compares them, exactly.
func accountKey(t models.Account, email string) string {
	return strconv.FormatInt(int64(t.ID), 10) + "\x00" + email
}

// clientAddress is the address the connection came from: not
// X-Forwarded-For, which anyone can send. An IPv6 client usually has a
// whole /64, so the /64 is one address here.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(strings.TrimSpace(host))
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// allow says whether a sign-in of account from address may have its
// password checked now, or how long to wait.
func (g *signInGuard) allow(account, address string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var wait time.Duration
	for _, b := range []*rate.Limiter{g.bucket(g.accounts, account, false), g.bucket(g.addresses, address, true)} {
		if tokens := b.TokensAt(now); tokens < 1 {
			wait = max(wait, time.Duration((1-tokens)*float64(time.Second)/float64(b.Limit())))
		}
	}
	if wait > 0 {
		return &errTooManyTries{retryAfter: wait, message: "Too many failed sign-ins for this email or from this address. Wait " + strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))) + " s and try again."}
	}
	return nil
}

// failed counts a failed sign-in against both the account and the address.
func (g *signInGuard) failed(account, address string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.bucket(g.accounts, account, false).AllowN(now, 1)
	g.bucket(g.addresses, address, true).AllowN(now, 1)
}

// succeeded forgets the account's failures (the address keeps its own).
func (g *signInGuard) succeeded(account string) {
	g.accounts.Remove(account)
}

// bucket returns key's bucket, a full one if key has none (or had one
// that was forgotten).
func (g *signInGuard) bucket(c *lru.Cache[string, *rate.Limiter], key string, address bool) *rate.Limiter {
	if b, ok := c.Get(key); ok {
		return b
	}
	burst, every := g.limits.AccountFailures, g.limits.AccountEvery
	if address {
		burst, every = g.limits.AddressFailures, g.limits.AddressEvery
	}
	b := rate.NewLimiter(rate.Every(every), burst)
	c.Add(key, b)
	return b
}

// errBusy is a sign-in that could not get a password check in time.
var errBusy = errors.New("too many sign-ins at once")

// check runs fn, a password check, when a slot is free: at most Checks
// at once and Waiting more waiting, each for at most Wait, so that a
// flood of sign-ins (many addresses, many emails) holds a bounded share
// of the CPUs and of the server's goroutines, and pages keep the rest.
func (g *signInGuard) check(ctx context.Context, fn func()) error {
	select {
	case g.checks <- struct{}{}:
	default:
		select {
		case g.waiting <- struct{}{}:
		default:
			return errBusy
		}
		timer := time.NewTimer(g.limits.Wait)
		defer timer.Stop()
		select {
		case g.checks <- struct{}{}:
			<-g.waiting
		case <-timer.C:
			<-g.waiting
			return errBusy
		case <-ctx.Done():
			<-g.waiting
			return ctx.Err()
		}
	}
	defer func() { <-g.checks }()
	fn()
	return nil
}
