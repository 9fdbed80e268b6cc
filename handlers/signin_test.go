package handlers

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"tenancy/models"
)

// TestAskToSignInAfterAPost: a form posted with no session cannot be
// replayed after signing in, so the browser is sent back, via the sign-in
// page, to the page of this host it was posted from, and never to another
// host's; a JSON client is told 401.
func TestAskToSignInAfterAPost(t *testing.T) {
	s, err := newSessions("signin-test-secret-0123456789", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	tenant := models.Account{ID: 1, Slug: "tenant-0"}
	r := gin.New()
	r.Use(func(c *gin.Context) {
		c.Request = c.Request.WithContext(models.NewContextWithTenant(c.Request.Context(), tenant))
	}, requireUser(s, slog.New(slog.DiscardHandler)))
	reached := false
	r.POST("/subtask/1/", func(c *gin.Context) { reached = true })
	for _, tt := range []struct {
		referer, accept, path string
		status                int
		location              string
	}{
		{"http://tenant-0.localhost/subtasks/2/", "", "/subtask/1/", http.StatusSeeOther, "/login?next=%2Fsubtasks%2F2%2F"},
		{"http://tenant-1.localhost/subtasks/2/", "", "/subtask/1/", http.StatusSeeOther, "/login"},
		{"http://evil.example/", "", "/subtask/1/", http.StatusSeeOther, "/login"},
		{"", "", "/subtask/1/", http.StatusSeeOther, "/login"},
		{"http://tenant-0.localhost/subtasks/2/", "application/json", "/subtask/1/", http.StatusUnauthorized, ""},
	} {
		req := httptest.NewRequest(http.MethodPost, "http://tenant-0.localhost"+tt.path, strings.NewReader("name=x"))
		req.Header.Set("Referer", tt.referer)
		req.Header.Set("Accept", tt.accept)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != tt.status || rec.Header().Get("Location") != tt.location || reached {
			t.Errorf("POST %s, Referer %q, Accept %q = %d, Location %q, handler reached %v; want %d, %q, not reached",
				tt.path, tt.referer, tt.accept, rec.Code, rec.Header().Get("Location"), reached, tt.status, tt.location)
		}
	}
}
