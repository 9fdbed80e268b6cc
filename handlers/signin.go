package handlers

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"tenancy/models"
)

// signedInKey is where requireUser leaves the request's session on the gin
// context, for handlers that need to know who is signed in.
const signedInKey = "tenancy.session"

// requireUser lets a request on a tenant's address through only with a
// session of that tenant: a browser is sent to the sign-in page, which
// brings it back here afterwards; a JSON client gets 401. Requests on the
// base domain are not a tenant's and pass on to what guards them there.
func requireUser(sess *sessions, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, ok := models.TenantFromContext(c.Request.Context())
		if !ok {
			c.Next()
			return
		}
		got, ok := sess.read(c.Request, t)
		if !ok {
			askToSignIn(c, t.Slug, log)
			return
		}
		c.Set(signedInKey, got)
		c.Next()
	}
}

// askToSignIn answers a request that needs a sign-in it does not have.
func askToSignIn(c *gin.Context, realm string, log *slog.Logger) {
	if wantsJSON(c) || strings.HasPrefix(c.Request.URL.Path, "/api/") {
		// A 401 must name a scheme; there is no registered one for a
		// cookie, so this one says where the cookie comes from.
		c.Header("WWW-Authenticate", `Cookie realm="`+realm+`", form-action="/login"`)
		c.Header("Cache-Control", "no-store")
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{
			"error":  "Sign in first: POST your email and password to /login on this address, then send the cookie it sets.",
			"status": http.StatusUnauthorized,
		})
		return
	}
	next := c.Request.URL.RequestURI()
	if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
		// A form posted without a session cannot be replayed after the
		// sign-in; coming back to the page it was on is what is left.
		next = safeNext(refererPath(c.Request))
	}
	target := "/login"
	if next != "" && next != "/" {
		target += "?next=" + url.QueryEscape(next)
	}
	c.Abort()
	c.Redirect(http.StatusSeeOther, target)
}

// refererPath is the path of the Referer when it is this host's, or "".
func refererPath(r *http.Request) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Host != r.Host {
		return ""
	}
	return u.RequestURI()
}
