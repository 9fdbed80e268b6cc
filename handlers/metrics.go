package handlers

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"tenancy/internal/metrics"
	"tenancy/models"
)

// measureRequests counts and times every request by its route template
// (c.FullPath(): /subtasks/:page/, never the page or the host, so that
// the series stay few), or metrics.UnmatchedRoute when no route matched.
func measureRequests(m *metrics.Metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = metrics.UnmatchedRoute
		}
		m.ObserveRequest(route, c.Writer.Status(), time.Since(start))
	}
}

// countTenants counts each request of a tenant that tenantFromHost found,
// for /metrics/tenants. Unknown slugs are not counted: they are no
// tenant's load, and anyone can make up as many as they like.
func countTenants(m *metrics.Metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		if t, ok := models.TenantFromContext(c.Request.Context()); ok {
			m.CountTenant(t.Slug)
		}
		c.Next()
	}
}

// baseDomainOnly lets through requests for the base domain itself, where
// the operator's pages are; a tenant's address has no such page.
func baseDomainOnly(baseDomain string, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		switch kind, _ := parseHost(c.Request.Host, baseDomain); kind {
		case hostBase:
			c.Next()
		case hostTenant:
			renderError(c, log, notFound("There is no page at this address."))
		default:
			renderError(c, log, wrongHost(baseDomain))
		}
	}
}

// The number of tenants /metrics/tenants lists: ?top=N, from 1 to
// maxTopTenants.
const (
	defaultTopTenants = 10
	maxTopTenants     = 100
)

// topTenants answers the busiest tenants of the last minute, as JSON:
// {"window_seconds":60,"requests":..,"exact":true,"tenants":[{"tenant":"tenant-3","requests":1234},...]}.
func topTenants(m *metrics.Metrics, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		n := defaultTopTenants
		if raw, ok := c.GetQuery("top"); ok {
			v, err := strconv.Atoi(raw)
			if err != nil || v < 1 || v > maxTopTenants {
				renderError(c, log, badRequest("top is how many tenants to list: a whole number from 1 to "+strconv.Itoa(maxTopTenants)+"."))
				return
			}
			n = v
		}
		c.JSON(http.StatusOK, m.TopTenants(n))
	}
}
