package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"

	"github.com/gin-gonic/gin"

	"tenancy/models"
	"tenancy/strategy"
)

// pagePattern accepts only canonical positive page numbers; anything else
// ("0", "-1", "01", "1e9", "abc") is not a page.
var pagePattern = regexp.MustCompile(`^[1-9][0-9]{0,8}$`)

func parsePage(raw string) (int, bool) {
	if raw == "" {
		return 1, true
	}
	if !pagePattern.MatchString(raw) {
		return 0, false
	}
	n, err := strconv.Atoi(raw)
	return n, err == nil
}

// pageLink is one entry of the pager; Number 0 is a gap.
type pageLink struct {
	Number  int
	Current bool
}

// pageWindow links the first and last pages and two on either side of the
// current one, with gaps between.
func pageWindow(current, pages int) []pageLink {
	const around = 2
	var out []pageLink
	last := 0
	for p := 1; p <= pages; p++ {
		if p != 1 && p != pages && (p < current-around || p > current+around) {
			continue
		}
		if last != 0 && p != last+1 {
			out = append(out, pageLink{})
		}
		out = append(out, pageLink{Number: p, Current: p == current})
		last = p
	}
	return out
}

func nextPage(page, pages int) int {
	if page < pages {
		return page + 1
	}
	return 0
}

func listSubtasks(s strategy.Strategy, perPage int, baseDomain string, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		page, ok := parsePage(c.Param("page"))
		if !ok {
			renderError(c, log, notFound("There is no such page. Page numbers are whole numbers from 1."))
			return
		}
		ctx := c.Request.Context()
		tenant, isTenant := models.TenantFromContext(ctx)
		result, err := s.ListSubtasks(ctx, page, perPage)
		if errors.Is(err, strategy.ErrNotSupported) && !isTenant {
			if c.Param("page") != "" { // the tenant list has one page
				renderError(c, log, notFound("There is no such page. The list of tenants is at /subtasks/."))
				return
			}
			listTenants(c, s, baseDomain, log)
			return
		}
		if err != nil {
			renderError(c, log, err)
			return
		}
		if wantsJSON(c) {
			c.JSON(http.StatusOK, result)
			return
		}
		title := "All tenants"
		if isTenant {
			title = tenant.Name + " (" + tenant.Slug + ")"
		}
		c.HTML(http.StatusOK, "subtasks.html", gin.H{
			"Title":    title,
			"Tenant":   isTenant, // rows link to their edit pages
			"Strategy": s.Name(),
			"Result":   result,
			"Links":    pageWindow(result.Page, result.Pages),
			"Prev":     result.Page - 1, // 0: none
			"Next":     nextPage(result.Page, result.Pages),
		})
	}
}

// listTenants is the base domain's page in multidb, which has no
// cross-database view: a list of tenants to pick from.
func listTenants(c *gin.Context, s strategy.Strategy, baseDomain string, log *slog.Logger) {
	tenants, err := s.Tenants(c.Request.Context())
	if err != nil {
		renderError(c, log, err)
		return
	}
	type link struct {
		Slug string `json:"slug"`
		URL  string `json:"url"`
	}
	links := make([]link, len(tenants))
	for i, t := range tenants {
		links[i] = link{Slug: t.Slug, URL: siteURL(c, baseDomain, t.Slug) + "subtasks/"}
	}
	if wantsJSON(c) {
		c.JSON(http.StatusOK, gin.H{"strategy": s.Name(), "tenants": links})
		return
	}
	c.HTML(http.StatusOK, "tenants.html", gin.H{"Strategy": s.Name(), "Tenants": links})
}

// siteURL is the root URL of a tenant (or of the base domain when slug is
// empty) on the port this request came in on.
func siteURL(c *gin.Context, baseDomain, slug string) string {
	host := baseDomain
	if slug != "" {
		host = slug + "." + baseDomain
	}
	if _, port, err := net.SplitHostPort(c.Request.Host); err == nil && port != "" {
		host = net.JoinHostPort(host, port)
	}
	return fmt.Sprintf("http://%s/", host)
}
