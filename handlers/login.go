package handlers

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"tenancy/internal/password"
	"tenancy/models"
	"tenancy/strategy"
)

// badCredentials is all a failed sign-in is told: which of the email and
// the password was wrong, or whether the user is inactive, would tell a
// stranger which emails have an account here.
const badCredentials = "That email and password do not match an active user of this account. Check both and try again."

// maxLoginBody bounds what a sign-in may send; an email and a password fit
// many times over.
const maxLoginBody = 16 << 10

// signedInTenant is the tenant a sign-in page is for: sign-in is per
// tenant, at the tenant's own address.
func signedInTenant(c *gin.Context, baseDomain string) (models.Account, error) {
	t, ok := models.TenantFromContext(c.Request.Context())
	if !ok {
		return models.Account{}, notFound("Sign in at your account's own address, e.g. tenant-0." + baseDomain + "/login.")
	}
	return t, nil
}

// loginPage is the sign-in form, or, asked for JSON, whether this request
// is signed in on this tenant.
func loginPage(sess *sessions, baseDomain string, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if models.IsAllTenants(c.Request.Context()) {
			operatorLoginPage(c, sess, baseDomain)
			return
		}
		t, err := signedInTenant(c, baseDomain)
		if err != nil {
			renderError(c, log, err)
			return
		}
		got, signedIn := sess.read(c.Request, t)
		if wantsJSON(c) {
			c.JSON(http.StatusOK, sessionJSON(t, got, signedIn))
			return
		}
		renderLogin(c, http.StatusOK, t, got, signedIn, "", safeNext(c.Query("next")), "")
	}
}

// login checks an email and password against the tenant's users and signs
// the user in on this tenant's address.
func login(s strategy.Strategy, sess *sessions, guard *signInGuard, baseDomain string, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if models.IsAllTenants(c.Request.Context()) {
			operatorLogin(c, s, sess, guard, baseDomain, log)
			return
		}
		t, err := signedInTenant(c, baseDomain)
		if err != nil {
			renderError(c, log, err)
			return
		}
		email, pw, next, err := loginInput(c)
		if err != nil {
			renderError(c, log, err)
			return
		}
		next = safeNext(next)
		if email == "" || pw == "" {
			if wantsJSON(c) {
				c.JSON(http.StatusUnprocessableEntity, gin.H{"error": "Enter both an email and a password.", "status": http.StatusUnprocessableEntity})
				return
			}
			renderLogin(c, http.StatusOK, t, session{}, false, email, next, "Enter both an email and a password.")
			return
		}
		// Refused before any work when this email or this address has
		// failed too often: a guess costs the guesser, not the server.
		account, address := accountKey(t, email), clientAddress(c.Request)
		if err := guard.allow(account, address); err != nil {
			refuseSignIn(c, t, email, next, err, log)
			return
		}
		u, err := s.UserByEmail(c.Request.Context(), email)
		if err != nil && !errors.Is(err, strategy.ErrUserNotFound) {
			renderError(c, log, err)
			return
		}
		// One derivation whether or not the email has a user here, in one
		// of the few slots password checks get.
		var ok bool
		var verr error
		if err := guard.check(c.Request.Context(), func() { ok, verr = password.Check(pw, u.Password) }); err != nil {
			refuseSignIn(c, t, email, next, err, log)
			return
		}
		if verr != nil {
			log.WarnContext(c.Request.Context(), "stored password hash not usable", "tenant", t.Slug, "user", u.ID, "err", verr)
		}
		if !ok || !u.IsActive {
			guard.failed(account, address)
			if wantsJSON(c) {
				c.JSON(http.StatusUnauthorized, gin.H{"error": badCredentials, "status": http.StatusUnauthorized})
				return
			}
			renderLogin(c, http.StatusOK, t, session{}, false, email, next, badCredentials)
			return
		}
		guard.succeeded(account)
		if err := sess.issue(c, t, u); err != nil {
			renderError(c, log, err)
			return
		}
		if wantsJSON(c) {
			c.JSON(http.StatusOK, sessionJSON(t, session{Email: u.Email}, true))
			return
		}
		if next == "" {
			next = "/"
		}
		c.Redirect(http.StatusSeeOther, next)
	}
}

// refuseSignIn answers a sign-in that was not checked: too many failures
// (429), or no password check free in time (503); both say when to retry.
func refuseSignIn(c *gin.Context, t models.Account, email, next string, err error, log *slog.Logger) {
	status, retry, msg := http.StatusServiceUnavailable, "1", "Too many people are signing in at once. Try again in a moment."
	var tooMany *errTooManyTries
	switch {
	case errors.As(err, &tooMany):
		status, retry, msg = http.StatusTooManyRequests, tooMany.retryAfterSeconds(), tooMany.message
	default: // errBusy, or the request's time ran out while waiting
		log.WarnContext(c.Request.Context(), "sign-in refused: no password check free", "tenant", t.Slug, "err", err)
	}
	c.Header("Retry-After", retry)
	c.Header("Cache-Control", "no-store")
	if wantsJSON(c) {
		c.AbortWithStatusJSON(status, gin.H{"error": msg, "status": status})
		return
	}
	renderLogin(c, status, t, session{}, false, email, next, msg)
}

// loginInput reads the email, password and next from a form, or from a
// JSON object when that is what was sent.
func loginInput(c *gin.Context) (email, pw, next string, err error) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxLoginBody)
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(c.GetHeader("Content-Type"), ";", 2)[0]))
	if ct == "application/json" {
		var in struct{ Email, Password, Next string }
		if err := json.NewDecoder(c.Request.Body).Decode(&in); err != nil {
			return "", "", "", badRequest(`Send {"email": "...", "password": "..."} as JSON, or the sign-in form's fields.`)
		}
		return strings.TrimSpace(in.Email), in.Password, in.Next, nil
	}
	if err := c.Request.ParseForm(); err != nil {
		return "", "", "", badRequest("The sign-in form could not be read; send its email and password fields (at most 16 KiB).")
	}
	return strings.TrimSpace(c.Request.PostForm.Get("email")), c.Request.PostForm.Get("password"), c.Request.PostForm.Get("next"), nil
}

// logout revokes the session (a copy of the cookie kept by someone is
// refused from then on, see revocations) and drops the cookie.
func logout(sess *sessions, baseDomain string, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if models.IsAllTenants(c.Request.Context()) {
			operatorLogout(c, sess, log)
			return
		}
		t, err := signedInTenant(c, baseDomain)
		if err != nil {
			renderError(c, log, err)
			return
		}
		if got, ok := sess.read(c.Request, t); ok {
			if err := sess.signOut(c, got); err != nil {
				renderError(c, log, err)
				return
			}
		}
		sess.clear(c)
		if wantsJSON(c) {
			c.JSON(http.StatusOK, sessionJSON(t, session{}, false))
			return
		}
		c.Redirect(http.StatusSeeOther, "/login")
	}
}

// signInUnavailable answers the sign-in addresses of a server given no
// SECRET_KEY (handlers.New's callers other than serve).
func signInUnavailable(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		renderError(c, log, notFound("Sign-in is not set up on this server: start it with SECRET_KEY set (tenancy serve does)."))
	}
}

func sessionJSON(t models.Account, s session, signedIn bool) gin.H {
	h := gin.H{"tenant": t.Slug, "signed_in": signedIn}
	if signedIn {
		h["email"] = s.Email
	}
	return h
}

func renderLogin(c *gin.Context, status int, t models.Account, s session, signedIn bool, email, next, message string) {
	c.HTML(status, "login.html", gin.H{
		"Title": "Sign in · " + t.Slug, "Tenant": t, "SignedIn": signedIn, "Session": s,
		"Email": email, "Next": next, "Message": message,
	})
}

// safeNext is next if it is a path on this host, or "": never another
// host, in any of the spellings browsers take for one ("//evil",
// "/\evil", "https:evil", control characters they strip).
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, `\`) {
		return ""
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	return next
}
