package handlers

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"tenancy/strategy"
)

// TestCacheHeaders: no answer may be kept by a cache, a tenant's data not
// even by the user's own, and every answer says it depends on Accept, since
// one URL serves HTML or JSON by it.
func TestCacheHeaders(t *testing.T) {
	const page, errorPage = "private, no-store", "no-store"
	tests := []struct {
		method, host, path, accept string
		wantStatus                 int
		wantCacheControl           string
	}{
		{http.MethodGet, "tenant-1.localhost", "/subtasks/", "", http.StatusOK, page},
		{http.MethodGet, "tenant-1.localhost", "/subtasks/", "text/html", http.StatusOK, page},
		{http.MethodGet, "tenant-1.localhost", "/subtasks/2/", "application/json", http.StatusOK, page},
		{http.MethodHead, "tenant-1.localhost", "/subtasks/", "application/json", http.StatusOK, page},
		{http.MethodGet, "localhost", "/subtasks/", "", http.StatusOK, page}, // all tenants, or the list of them
		{http.MethodGet, "localhost", "/subtasks/", "application/json", http.StatusOK, page},
		{http.MethodGet, "localhost", "/reports/open-subtasks", "", http.StatusOK, page},
		{http.MethodGet, "localhost", "/reports/open-subtasks", "application/json", http.StatusOK, page},
		{http.MethodGet, "tenant-1.localhost", "/reports/open-subtasks", "", http.StatusNotFound, errorPage},
		{http.MethodGet, "tenant-9.localhost", "/subtasks/", "", http.StatusNotFound, errorPage},
		{http.MethodGet, "tenant-9.localhost", "/subtasks/", "application/json", http.StatusNotFound, errorPage},
		{http.MethodGet, "tenant-1.localhost", "/subtasks/9/", "", http.StatusNotFound, errorPage}, // after the tenant was found
		{http.MethodGet, "tenant-1.localhost", "/nowhere", "application/json", http.StatusNotFound, errorPage},
		{http.MethodGet, "evil.com", "/subtasks/", "", http.StatusBadRequest, errorPage},
		{http.MethodPost, "tenant-1.localhost", "/subtasks/", "", http.StatusMethodNotAllowed, errorPage},
	}
	for _, name := range strategy.Names() {
		h := fakeRouter(t, name)
		for _, tt := range tests {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.Host = tt.host
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("%s %s %s%s (Accept %q) = %d, want %d", name, tt.method, tt.host, tt.path, tt.accept, rec.Code, tt.wantStatus)
				continue
			}
			if got := rec.Header().Get("Cache-Control"); got != tt.wantCacheControl {
				t.Errorf("%s %s %s%s (Accept %q): Cache-Control %q, want %q", name, tt.method, tt.host, tt.path, tt.accept, got, tt.wantCacheControl)
			}
			if got := rec.Header().Values("Vary"); !slices.Equal(got, []string{"Accept"}) {
				t.Errorf("%s %s %s%s (Accept %q): Vary %q, want [Accept]", name, tt.method, tt.host, tt.path, tt.accept, got)
			}
		}
	}
}
