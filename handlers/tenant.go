package handlers

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"tenancy/models"
	"tenancy/strategy"
)

// tenantFromHost resolves the tenant named by the Host header and puts it on
// the request's context, where the strategy reads it. The bare base domain
// gets the explicit all-tenants context instead; any other host is refused.
func tenantFromHost(s strategy.Strategy, baseDomain string, hideAllTenants bool, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		kind, slug := parseHost(c.Request.Host, baseDomain)
		ctx := c.Request.Context()
		switch kind {
		case hostBase:
			if hideAllTenants {
				renderError(c, log, notFound("The all-tenants view is turned off on this server (ALL_TENANTS_VIEW). Open a tenant's address instead, e.g. tenant-0."+baseDomain+"."))
				return
			}
			ctx = models.NewContextForAllTenants(ctx)
		case hostTenant:
			t, err := s.TenantBySlug(ctx, slug)
			if err != nil {
				renderError(c, log, err)
				return
			}
			ctx = models.NewContextWithTenant(ctx, t)
		default:
			renderError(c, log, wrongHost(baseDomain))
			return
		}
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// wrongHost is the answer to a Host header outside this site.
func wrongHost(baseDomain string) error {
	return badRequest("This server answers only for " + baseDomain + " (all tenants) and <tenant>." + baseDomain + ", e.g. tenant-0." + baseDomain + ".")
}
