package handlers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tenancy/strategy"
)

// BenchmarkPagesUnderSignInFlood is what a password-guessing flood costs
// the other signed-in users: signed-in tenant pages from 16 clients at
// once while wrong passwords arrive at 50 a second, against one account
// from one address (the limits refuse all but the first few before any
// password work), and against a new email from a new address each time
// (every one a full password check, which the bound on concurrent checks
// keeps to one core). It reports the pages' p99 and how the sign-ins were
// answered. singleschema; the flood does not depend on the strategy.
func BenchmarkPagesUnderSignInFlood(b *testing.B) {
	a := newApp(b, strategy.SingleSchema)
	hosts := make([]string, accounts)
	cookies := make([]*http.Cookie, accounts)
	for i := range hosts {
		hosts[i] = strategy.Slug(i) + "." + a.base
		if cookies[i] = a.cookieFor(hosts[i]); cookies[i] == nil {
			b.Fatalf("could not sign in on %s", hosts[i])
		}
	}
	victim, _ := seededUsers(b, 0)
	for _, flood := range []string{"none", "one account from one address", "a new email from a new address each time"} {
		b.Run("flood="+flood, func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var answered sync.Map // status -> *atomic.Int64
			if flood != "none" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(time.Second / 50)
					defer tick.Stop()
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						email, remote := victim.Email, "192.0.2.1:1234"
						if flood != "one account from one address" {
							email, remote = fmt.Sprintf("guess-%d@example.com", n), fmt.Sprintf("10.%d.%d.%d:1234", n>>16&255, n>>8&255, n&255)
						}
						wg.Add(1)
						go func() { // a flood does not wait for answers
							defer wg.Done()
							form := url.Values{"email": {email}, "password": {"guess"}}
							req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
							req.Host, req.RemoteAddr = hosts[0], remote
							req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
							req.Header.Set("Accept", "application/json")
							rec := httptest.NewRecorder()
							a.h.ServeHTTP(rec, req)
							c, _ := answered.LoadOrStore(rec.Code, new(atomic.Int64))
							c.(*atomic.Int64).Add(1)
						}()
					}
				}()
			}
			var mu sync.Mutex
			var latencies []time.Duration
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				i := 0
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "/subtasks/2/", nil)
					req.Host = hosts[1+i%(accounts-1)]
					req.Header.Set("Accept", "application/json")
					req.AddCookie(cookies[1+i%(accounts-1)])
					rec := httptest.NewRecorder()
					start := time.Now()
					a.h.ServeHTTP(rec, req)
					mine = append(mine, time.Since(start))
					if rec.Code != http.StatusOK {
						b.Errorf("GET %s/subtasks/2/ = %d", req.Host, rec.Code)
						return
					}
					i++
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(latencies)
			if len(latencies) > 0 {
				b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
			}
			answered.Range(func(k, v any) bool {
				b.ReportMetric(float64(v.(*atomic.Int64).Load()), fmt.Sprintf("signins-%d", k))
				return true
			})
		})
	}
}
