package handlers

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// crossOriginProtection refuses state-changing requests (anything but GET,
// HEAD and OPTIONS) that a browser says come from another origin: the
// standard library's check of Sec-Fetch-Site, or of Origin against Host
// for browsers that do not send it. It is the CSRF protection of every
// form and of the JSON API, with no token to carry: the session cookie is
// SameSite=Lax, which stops other sites' posts, but tenant-2.example.com
// is the same site as tenant-1.example.com, so Lax alone would let one
// tenant's pages post into another's session. Requests with neither
// header (curl, the load generators) are not a browser's and pass.
func crossOriginProtection(h http.Handler, log *slog.Logger) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.WarnContext(r.Context(), "cross-origin request refused", "method", r.Method, "host", r.Host, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		w.Header().Set("Cache-Control", "no-store")
		msg := "This request came from another site or another tenant's address, so it was refused. Submit the form from this address's own pages."
		if prefersJSON(r.Header.Get("Accept")) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": msg, "status": http.StatusForbidden})
			return
		}
		http.Error(w, msg, http.StatusForbidden)
	}))
	return p.Handler(h)
}
