package handlers

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"tenancy/models"
	"tenancy/strategy"
)

// openSubtasksReport is the cross-tenant report, on the base domain only:
// tenantFromHost has already answered 404 there when ALL_TENANTS_VIEW is
// off, and put the explicit all-tenants context on the request. A tenant's
// own address answers 404, as for any page that is not the tenant's. A
// report that could not read some tenants (multidb) is still a 200, which
// lists them with the reason; their errors go to the log.
func openSubtasksReport(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		if !models.IsAllTenants(ctx) {
			renderError(c, log, notFound("Reports across tenants are served only at the base domain's address, not at a tenant's."))
			return
		}
		rep, err := s.ReportOpenSubtasks(ctx, strategy.ReportOptions{})
		if err != nil {
			renderError(c, log, err)
			return
		}
		for _, u := range rep.Unreachable {
			log.WarnContext(ctx, "report: tenant not read", "tenant", u.Slug, "reason", u.Reason, "err", u.Err)
		}
		if wantsJSON(c) {
			c.JSON(http.StatusOK, rep)
			return
		}
		c.HTML(http.StatusOK, "report.html", gin.H{"Report": rep, "Elapsed": rep.Elapsed.Round(100 * time.Microsecond).String()})
	}
}
