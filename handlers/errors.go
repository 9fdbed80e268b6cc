package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"tenancy/models"
	"tenancy/strategy"
)

// userError is an error whose message is safe, and meant, to show a user.
type userError struct {
	status  int
	message string
}

func (e *userError) Error() string { return e.message }

func notFound(msg string) error   { return &userError{http.StatusNotFound, msg} }
func badRequest(msg string) error { return &userError{http.StatusBadRequest, msg} }

// statusOf maps an error to what the user is told: one place, so that no
// handler shows a database error's text or turns a bad request into a 500.
func statusOf(err error) (int, string) {
	var ue *userError
	switch {
	case errors.As(err, &ue):
		return ue.status, ue.message
	case errors.Is(err, strategy.ErrTenantNotFound):
		return http.StatusNotFound, "There is no such tenant here. Check the address, or open the base domain for the list of tenants."
	case errors.Is(err, strategy.ErrNotFound):
		return http.StatusNotFound, "There is no such row in this account. Check the address or the id."
	case errors.Is(err, strategy.ErrStale):
		return http.StatusPreconditionFailed, "It has changed since you read it; nothing was saved. Read it again and make your change on what it is now."
	case errors.Is(err, strategy.ErrInvalid):
		return http.StatusUnprocessableEntity, "Some fields are not valid; nothing was saved. Correct them and send again."
	case errors.Is(err, strategy.ErrPageNotFound):
		return http.StatusNotFound, "There is no such page. Page numbers run from 1 to the last page shown in the list."
	case errors.Is(err, strategy.ErrTenantUpgrading):
		// The talk's mixed versions: this tenant's database or schema is
		// still on the old version (its migration failed, or has not
		// reached it); other tenants are served by this same code.
		return http.StatusServiceUnavailable, "This tenant is being upgraded; other tenants are not affected. Try again in a few minutes; if it persists, run `tenancy migrate` on the server, which finishes the upgrade (`tenancy check` lists the tenants behind)."
	case errors.Is(err, strategy.ErrTenantUnavailable):
		// 503, not 404: the tenant exists in this deployment and the fault is
		// the server's (a dropped or locked database or schema, a restore
		// in progress). A 404 would tell clients and caches the tenant is
		// gone.
		return http.StatusServiceUnavailable, "This tenant's data is not available right now; other tenants are not affected. Try again in a few minutes; if it persists, run `tenancy check` on the server, which says what is missing (`tenancy setup` recreates a missing tenant database or schema)."
	case errors.Is(err, strategy.ErrUnavailable):
		return http.StatusServiceUnavailable, "The database is not reachable right now. Try again in a few seconds; if it persists, check that PostgreSQL is running."
	case errors.Is(err, strategy.ErrMissingPrivilege):
		// 500, not 503: the database is up and refused on purpose; the
		// deployment lacks a grant, and the page fails until it has it.
		return http.StatusInternalServerError, "The server's database setup is incomplete, so this cannot be done. It has been logged for the operators; trying again will not help until they have fixed it."
	default:
		return http.StatusInternalServerError, "Something went wrong on our side. It has been logged; try again later."
	}
}

// renderError writes the error page, or a JSON error when the client asked
// for JSON, and logs everything that is not the client's fault.
func renderError(c *gin.Context, log *slog.Logger, err error) {
	status, msg := statusOf(err)
	// Not kept by any cache: an unknown tenant may be created a minute
	// later, and a 503 is over when the database is back. noCaching has
	// already said that the answer varies by Accept.
	c.Header("Cache-Control", "no-store")
	if status >= 500 {
		logFailure(c, log, status, err)
		switch {
		case errors.Is(err, strategy.ErrTenantUnavailable):
			c.Header("Retry-After", "60") // as the message says: minutes, not seconds
		case status == http.StatusServiceUnavailable:
			c.Header("Retry-After", "5")
		}
	}
	if wantsJSON(c) {
		c.AbortWithStatusJSON(status, gin.H{"error": msg, "status": status})
		return
	}
	c.Abort()
	c.HTML(status, "error.html", gin.H{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}

// wantsJSON: the client prefers JSON, or asked the JSON API, which
// answers nothing else.
func wantsJSON(c *gin.Context) bool {
	return strings.HasPrefix(c.Request.URL.Path, "/api/") || prefersJSON(c.GetHeader("Accept"))
}

// logFailure logs a request the server failed. A privilege the database
// refused is logged as the deployment fault it is, with the tenant, what
// was being done and what the operator should run: it is not an outage,
// and a 503 among the others once hid a missing grant for a long time.
func logFailure(c *gin.Context, log *slog.Logger, status int, err error) {
	ctx := c.Request.Context()
	if !errors.Is(err, strategy.ErrMissingPrivilege) {
		log.ErrorContext(ctx, "request failed", "host", c.Request.Host, "path", c.Request.URL.Path, "status", status, "err", err)
		return
	}
	tenant := "(all tenants)"
	if t, ok := models.TenantFromContext(ctx); ok {
		tenant = t.Slug
	}
	log.ErrorContext(ctx, "deployment fault: the database refused the server a privilege it needs (SQLSTATE 42501, insufficient_privilege); "+
		"run `tenancy check`, which names the missing grant, then `tenancy migrate`, which makes it",
		"tenant", tenant, "doing", c.Request.Method+" "+c.Request.URL.Path, "host", c.Request.Host, "status", status, "err", err)
}
