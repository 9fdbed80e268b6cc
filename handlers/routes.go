// Package handlers is the web application: the tenant-from-subdomain
// middleware, the subtask list per tenant, sign-in and sign-out per
// tenant (login.go, session.go, revoke.go), the operators' sign-in on the
// base domain (operator.go) and what it guards there: the all-tenants
// view, the cross-tenant report and the metrics; the health check; over
// any strategy.Strategy.
package handlers

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"tenancy/internal/metrics"
	"tenancy/strategy"
)

//go:embed templates/*.html
var templateFiles embed.FS

// Options configure the router.
type Options struct {
	// BaseDomain: tenant-3.<BaseDomain> is tenant-3; <BaseDomain> itself is
	// the all-tenants view.
	BaseDomain string
	// PerPage is the subtask list's page size (10 when zero).
	PerPage int
	// RequestTimeout bounds the database work of one request
	// (DefaultRequestTimeout when zero); past it the request is answered
	// 503.
	RequestTimeout time.Duration
	// HideAllTenants turns off what the base domain serves: the
	// all-tenants view (the list of tenants in multidb), the cross-tenant
	// report and the operators' sign-in (404 before any sign-in). Shown,
	// they need a signed-in operator.
	HideAllTenants bool
	// Metrics, when set, measures every request and serves /metrics and
	// /metrics/tenants at the base domain (not at tenants' addresses), to
	// a signed-in operator.
	Metrics *metrics.Metrics
	// SecretKey signs and encrypts the sign-in cookie (SECRET_KEY). Every
	// page of a tenant needs a user of that tenant signed in, and every
	// page of the base domain an operator. New refuses an empty one unless
	// AllowAnonymous is set.
	SecretKey string
	// SecretKeyFallbacks are earlier SECRET_KEYs, whose cookies are still
	// accepted (SECRET_KEY_FALLBACKS); new cookies are signed with
	// SecretKey alone.
	SecretKeyFallbacks []string
	// AllowAnonymous, with no SecretKey, serves tenants' pages to anyone,
	// as before sign-in existed: for tests and benchmarks of the data
	// layer alone. The base domain's pages are served to anyone too, and
	// /login and /logout answer 404. serve never sets it.
	AllowAnonymous bool
	// SessionTTL is how long a sign-in lasts (DefaultSessionTTL when
	// zero).
	SessionTTL time.Duration
	// SignInLimits bound failed sign-ins and concurrent password checks
	// (defaults when zero).
	SignInLimits SignInLimits
	Logger       *slog.Logger
}

// DefaultRequestTimeout is the database time a request gets unless
// Options.RequestTimeout says otherwise.
const DefaultRequestTimeout = 10 * time.Second

// New returns the application's routes over s.
func New(s strategy.Strategy, o Options) (http.Handler, error) {
	h, _, err := newRouter(s, o)
	return h, err
}

// newRouter is New, and the sessions it checks (nil without a secret
// key), for tests that read another server's sign-outs.
func newRouter(s strategy.Strategy, o Options) (http.Handler, *sessions, error) {
	if s == nil {
		return nil, nil, errors.New("handlers: strategy must not be nil")
	}
	if o.BaseDomain == "" {
		return nil, nil, errors.New("handlers: base domain must not be empty")
	}
	if o.PerPage <= 0 {
		o.PerPage = 10
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := template.ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, nil, err
	}
	log := o.Logger
	guard, err := newSignInGuard(o.SignInLimits, nil)
	if err != nil {
		return nil, nil, err
	}
	var sess *sessions
	switch {
	case o.SecretKey != "":
		if sess, err = newSessions(o.SecretKey, o.SessionTTL, nil, o.SecretKeyFallbacks...); err != nil {
			return nil, nil, err
		}
		sess.revoked = newRevocations(s, time.Now, log)
	case !o.AllowAnonymous:
		return nil, nil, errors.New("handlers: a secret key is needed to sign users in (or AllowAnonymous, for tests that serve pages to anyone)")
	}

	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.SetHTMLTemplate(tmpl)
	if o.Metrics != nil {
		// First, so that it times everything, and sees the status the
		// recovery below gives a panic.
		r.Use(measureRequests(o.Metrics))
	}
	r.Use(logRequests(log), withTimeout(o.RequestTimeout), noCaching, gin.CustomRecovery(func(c *gin.Context, v any) {
		renderError(c, log, errors.New("panic while serving request"))
		log.Error("panic", "value", v)
	}))
	r.NoRoute(func(c *gin.Context) { renderError(c, log, notFound("There is no page at this address.")) })
	r.NoMethod(func(c *gin.Context) {
		// gin has listed the methods the path has in Allow.
		allow := c.Writer.Header().Get("Allow")
		if allow == "" {
			allow = "GET, HEAD"
			c.Header("Allow", allow)
		}
		renderError(c, log, &userError{http.StatusMethodNotAllowed, "This address only answers " + allow + "."})
	})

	// Every page answers GET and HEAD alike (net/http drops HEAD's body).
	get := func(g gin.IRoutes, path string, h gin.HandlerFunc) {
		g.GET(path, h)
		g.HEAD(path, h)
	}
	// The health check answers on any host, so probes can use an IP address.
	get(r, "/healthz", healthz(s))

	site := r.Group("/", tenantFromHost(s, o.BaseDomain, o.HideAllTenants, log), requireOperator(s, sess, o.BaseDomain, log))
	if o.Metrics != nil {
		site.Use(countTenants(o.Metrics))
		ops := r.Group("/metrics", baseDomainOnly(o.BaseDomain, log), requireOperator(s, sess, o.BaseDomain, log))
		get(ops, "", gin.WrapH(o.Metrics.Handler()))
		get(ops, "/tenants", topTenants(o.Metrics, log))
	}
	// A tenant's pages need one of its users signed in (the base
	// domain's, an operator: requireOperator, on site).
	pages := site
	if sess != nil {
		pages = site.Group("/", requireUser(sess, log))
	}
	get(pages, "/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/subtasks/") })
	get(pages, "/subtasks/", listSubtasks(s, o.PerPage, o.BaseDomain, log))
	get(pages, "/subtasks/:page/", listSubtasks(s, o.PerPage, o.BaseDomain, log))
	get(pages, "/reports/open-subtasks", openSubtasksReport(s, log))
	// Writes (api.go, forms.go): at a tenant's address only, signed in.
	get(pages, "/api/subtasks/:id", apiGetSubtask(s, log))
	pages.POST("/api/subtasks", apiCreateSubtask(s, log))
	pages.PATCH("/api/subtasks/:id", apiUpdateSubtask(s, log))
	pages.DELETE("/api/subtasks/:id", apiDeleteSubtask(s, log))
	pages.POST("/api/tasks/:id/complete", apiCompleteTask(s, log))
	get(pages, "/api/tasks", apiListTasks(s, log))
	get(pages, "/tasks/", tasksPage(s, log))
	pages.POST("/task/:id/complete", completeTaskForm(s, log))
	get(pages, "/subtask/new", newSubtaskPage(s, log))
	pages.POST("/subtask/new", createSubtaskForm(s, log))
	get(pages, "/subtask/:id/", editSubtaskPage(s, log))
	pages.POST("/subtask/:id/", saveSubtask(s, log))
	pages.POST("/subtask/:id/delete", deleteSubtaskForm(s, log))
	// Sign-in per tenant, and of operators on the base domain.
	if sess != nil {
		get(site, "/login", loginPage(sess, o.BaseDomain, log))
		site.POST("/login", login(s, sess, guard, o.BaseDomain, log))
		site.POST("/logout", logout(sess, o.BaseDomain, log))
	} else {
		get(site, "/login", signInUnavailable(log))
		site.POST("/login", signInUnavailable(log))
		site.POST("/logout", signInUnavailable(log))
	}
	return crossOriginProtection(r, log), sess, nil
}

func healthz(s strategy.Strategy) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.Ping(c.Request.Context()); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "database": "unreachable", "strategy": s.Name()})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok", "database": "reachable", "strategy": s.Name()})
	}
}

func logRequests(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
			slog.String("method", c.Request.Method), slog.String("host", c.Request.Host),
			slog.String("path", c.Request.URL.Path), slog.Int("status", c.Writer.Status()),
			slog.Duration("duration", time.Since(start)))
	}
}

// noCaching keeps every answer out of caches, before any handler runs so
// that no answer can miss it. A tenant page is one tenant's data (the base
// domain's, every tenant's), which a cache shared between users must not
// keep, and it changes with every write. One URL answers HTML or JSON by
// the Accept header, so an answer kept anyway must not be handed to a
// client that asked for the other. renderError drops "private" for errors,
// which hold no tenant's data but must not outlive the fault either.
func noCaching(c *gin.Context) {
	c.Header("Cache-Control", "private, no-store")
	c.Header("Vary", "Accept")
	c.Next()
}

func withTimeout(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}
