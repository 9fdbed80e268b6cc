package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"tenancy/internal/password"
	"tenancy/models"
	"tenancy/strategy"
)

// Operators sign in on the base domain, the only address that serves what
// reads across tenants (the all-tenants view, the cross-tenant report,
// the metrics). Their session says operator and names no tenant, so every
// tenant's address refuses it (sessions.read), as the base domain
// refuses a tenant user's (sessions.readOperator).

// badOperatorCredentials is all a failed operator sign-in is told.
const badOperatorCredentials = "That email and password do not match an operator. Check both and try again; operators are created with `tenancy operator create`."

// operatorsPage stands for the base domain on the sign-in form, which
// otherwise names the tenant.
func operatorsPage(baseDomain string) models.Account {
	return models.Account{Name: "operators", Slug: baseDomain}
}

func operatorJSON(s session, signedIn bool) gin.H {
	h := gin.H{"operator": true, "signed_in": signedIn}
	if signedIn {
		h["email"] = s.Email
	}
	return h
}

// operatorLoginPage is GET /login on the base domain.
func operatorLoginPage(c *gin.Context, sess *sessions, baseDomain string) {
	got, signedIn := sess.readOperator(c.Request)
	if wantsJSON(c) {
		c.JSON(http.StatusOK, operatorJSON(got, signedIn))
		return
	}
	renderLogin(c, http.StatusOK, operatorsPage(baseDomain), got, signedIn, "", safeNext(c.Query("next")), "")
}

// operatorLogin is POST /login on the base domain: the operator's email
// and password, checked as a user's are (one derivation whether or not
// the email is an operator's, under the same limits on failures).
func operatorLogin(c *gin.Context, s strategy.Strategy, sess *sessions, guard *signInGuard, baseDomain string, log *slog.Logger) {
	email, pw, next, err := loginInput(c)
	if err != nil {
		renderError(c, log, err)
		return
	}
	next = safeNext(next)
	page := operatorsPage(baseDomain)
	if email == "" || pw == "" {
		if wantsJSON(c) {
			c.JSON(http.StatusUnprocessableEntity, gin.H{"error": "Enter both an email and a password.", "status": http.StatusUnprocessableEntity})
			return
		}
		renderLogin(c, http.StatusOK, page, session{}, false, email, next, "Enter both an email and a password.")
		return
	}
	// Operators' emails are compared without case, so are their limits;
	// account 0 is no tenant's.
	account, address := accountKey(page, strings.ToLower(email)), clientAddress(c.Request)
	if err := guard.allow(account, address); err != nil {
		refuseSignIn(c, page, email, next, err, log)
		return
	}
	o, err := s.OperatorByEmail(c.Request.Context(), email)
	if err != nil && !errors.Is(err, strategy.ErrOperatorNotFound) {
		renderError(c, log, err)
		return
	}
	var ok bool
	var verr error
	if err := guard.check(c.Request.Context(), func() { ok, verr = password.Check(pw, o.Password) }); err != nil {
		refuseSignIn(c, page, email, next, err, log)
		return
	}
	if verr != nil {
		log.WarnContext(c.Request.Context(), "stored operator password hash not usable", "operator", o.ID, "err", verr)
	}
	if !ok {
		guard.failed(account, address)
		if wantsJSON(c) {
			c.JSON(http.StatusUnauthorized, gin.H{"error": badOperatorCredentials, "status": http.StatusUnauthorized})
			return
		}
		renderLogin(c, http.StatusOK, page, session{}, false, email, next, badOperatorCredentials)
		return
	}
	guard.succeeded(account)
	if err := sess.issueOperator(c, o); err != nil {
		renderError(c, log, err)
		return
	}
	if wantsJSON(c) {
		c.JSON(http.StatusOK, operatorJSON(session{Email: o.Email}, true))
		return
	}
	if next == "" {
		next = "/subtasks/"
	}
	c.Redirect(http.StatusSeeOther, next)
}

// operatorLogout is POST /logout on the base domain.
func operatorLogout(c *gin.Context, sess *sessions, log *slog.Logger) {
	if got, ok := sess.readOperator(c.Request); ok {
		if err := sess.signOut(c, got); err != nil {
			renderError(c, log, err)
			return
		}
	}
	sess.clear(c)
	if wantsJSON(c) {
		c.JSON(http.StatusOK, operatorJSON(session{}, false))
		return
	}
	c.Redirect(http.StatusSeeOther, "/login")
}

// requireOperator lets a request on the base domain through only with the
// session of an operator who still exists (looked up on each request, so
// deleting an operator ends its sessions; the base domain's pages read
// every tenant and cost far more than that). Sign-in and sign-out are
// open; tenants' addresses are requireUser's business.
func requireOperator(s strategy.Strategy, sess *sessions, baseDomain string, log *slog.Logger) gin.HandlerFunc {
	// Operators found lately, by email, with their id: the look-up cost
	// every all-tenants page a round trip to the database (a quarter of
	// its throughput at 2,000 accounts). A deleted operator's sessions end
	// within RevocationRefresh, as a sign-out on another server does.
	found := &foundOperators{ttl: RevocationRefresh, now: time.Now}
	return func(c *gin.Context) {
		if kind, _ := parseHost(c.Request.Host, baseDomain); kind != hostBase {
			c.Next()
			return
		}
		switch c.FullPath() {
		case "/login", "/logout":
			c.Next()
			return
		}
		if sess == nil {
			// Only Options.AllowAnonymous gets here (New refuses no key
			// otherwise): no sign-in anywhere, for tests of the data
			// layer alone.
			c.Next()
			return
		}
		got, ok := sess.readOperator(c.Request)
		if ok && !found.has(got.Email, got.Operator) {
			o, err := s.OperatorByEmail(c.Request.Context(), got.Email)
			switch {
			case errors.Is(err, strategy.ErrOperatorNotFound):
				ok = false
			case err != nil:
				renderError(c, log, err)
				return
			case o.ID != got.Operator:
				ok = false // deleted, and another made with the email
			default:
				found.add(got.Email, o.ID)
			}
		}
		if !ok {
			askToSignIn(c, "operators", log)
			return
		}
		c.Next()
	}
}

// foundOperators remembers, for ttl, the operators a look-up found. It
// holds at most maxFoundOperators and starts afresh when full: operators
// are few, and a miss costs one look-up.
type foundOperators struct {
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
	seen map[string]foundOperator
}

type foundOperator struct {
	id int64
	at time.Time
}

const maxFoundOperators = 1000

func (f *foundOperators) has(email string, id int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.seen[email]
	return ok && e.id == id && f.now().Sub(e.at) < f.ttl
}

func (f *foundOperators) add(email string, id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil || len(f.seen) >= maxFoundOperators {
		f.seen = make(map[string]foundOperator)
	}
	f.seen[email] = foundOperator{id: id, at: f.now()}
}
