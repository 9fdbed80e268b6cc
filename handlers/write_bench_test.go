package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"tenancy/strategy"
)

// BenchmarkSubtaskToggle is the write of the mixed load: read a subtask
// with its ETag and flip its completion with If-Match, through the
// router, over each strategy's real database, 16 at once. An op is the
// pair of requests.
func BenchmarkSubtaskToggle(b *testing.B) {
	for _, name := range strategy.Names() {
		a := newApp(b, name)
		type target struct {
			host   string
			cookie *http.Cookie
			ids    []int64
		}
		targets := make([]target, accounts)
		for i := range targets {
			host := strategy.Slug(i) + "." + a.base
			c := a.cookieFor(host)
			if c == nil {
				b.Fatalf("%s: could not sign in on %s", name, host)
			}
			req := httptest.NewRequest(http.MethodGet, "/subtasks/1/", nil)
			req.Host = host
			req.Header.Set("Accept", "application/json")
			req.AddCookie(c)
			rec := httptest.NewRecorder()
			a.h.ServeHTTP(rec, req)
			var page struct {
				Rows []struct {
					ID int64 `json:"id"`
				} `json:"rows"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Rows) == 0 {
				b.Fatalf("%s: the first page of %s: %d %.200s", name, host, rec.Code, rec.Body)
			}
			targets[i] = target{host: host, cookie: c}
			for _, r := range page.Rows {
				targets[i].ids = append(targets[i].ids, r.ID)
			}
		}
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(8)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := int(next.Add(1))
					tg := targets[n%len(targets)]
					path := "/api/subtasks/" + strconv.FormatInt(tg.ids[(n/len(targets))%len(tg.ids)], 10)
					do := func(method, body, etag string) *httptest.ResponseRecorder {
						req := httptest.NewRequest(method, path, strings.NewReader(body))
						req.Host = tg.host
						req.Header.Set("Accept", "application/json")
						req.Header.Set("Content-Type", "application/json")
						if etag != "" {
							req.Header.Set("If-Match", etag)
						}
						req.AddCookie(tg.cookie)
						rec := httptest.NewRecorder()
						a.h.ServeHTTP(rec, req)
						return rec
					}
					got := do(http.MethodGet, "", "")
					var s struct {
						IsComplete bool `json:"is_complete"`
					}
					if got.Code != http.StatusOK || json.Unmarshal(got.Body.Bytes(), &s) != nil {
						b.Errorf("GET %s%s = %d %.200s", tg.host, path, got.Code, got.Body)
						return
					}
					patched := do(http.MethodPatch, `{"is_complete":`+strconv.FormatBool(!s.IsComplete)+`}`, got.Header().Get("ETag"))
					// Two workers may pick the same subtask: 412 is the
					// API refusing a stale write, as it should.
					if patched.Code != http.StatusOK && patched.Code != http.StatusPreconditionFailed {
						b.Errorf("PATCH %s%s = %d %.200s", tg.host, path, patched.Code, patched.Body)
						return
					}
				}
			})
		})
	}
}
