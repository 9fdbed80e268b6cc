package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"tenancy/handlers"
	"tenancy/strategy"
)

// BenchmarkTenantPage is what requiring a signed-in user costs a page: a
// tenant's second page as JSON, through the router, over each strategy's
// real database, from every P at once, served anonymously (AllowAnonymous,
// as before sign-in) and with a session cookie that the server checks.
// Run with -count to compare the two of each strategy side by side.
func BenchmarkTenantPage(b *testing.B) {
	for _, name := range strategy.Names() {
		a := newApp(b, name)
		anonymous, err := handlers.New(a.s, handlers.Options{BaseDomain: a.base, AllowAnonymous: true})
		if err != nil {
			b.Fatal(err)
		}
		hosts := make([]string, accounts)
		cookies := make([]*http.Cookie, accounts)
		for i := range hosts {
			hosts[i] = strategy.Slug(i) + "." + a.base
			if cookies[i] = a.cookieFor(hosts[i]); cookies[i] == nil {
				b.Fatalf("%s: could not sign in on %s", name, hosts[i])
			}
		}
		for _, signedIn := range []bool{false, true} {
			h := anonymous
			if signedIn {
				h = a.h
			}
			b.Run(name+"/signed-in="+strconv.FormatBool(signedIn), func(b *testing.B) {
				b.SetParallelism(8) // 16 requests at once on 2 CPUs, as the load tests send
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						req := httptest.NewRequest(http.MethodGet, "/subtasks/2/", nil)
						req.Host = hosts[i%accounts]
						req.Header.Set("Accept", "application/json")
						if signedIn {
							req.AddCookie(cookies[i%accounts])
						}
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							b.Errorf("GET %s/subtasks/2/ = %d %s", req.Host, rec.Code, rec.Body)
							return
						}
						i++
					}
				})
			})
		}
	}
}
