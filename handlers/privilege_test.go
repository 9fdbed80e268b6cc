package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"tenancy/handlers"
	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
	"tenancy/strategy/strategytest"
)

// lockedBuffer is a log sink the handlers write to from their goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// TestMissingPrivilegeIsADeploymentFault: a grant the app role lacks
// (42501, insufficient_privilege) is answered 500, not the 503 "database
// not reachable" of an outage, and logged as a deployment fault naming
// the tenant, the request, PostgreSQL's own words and what to run; the
// same request succeeds once the grant is back. It goes red if a missing
// privilege were classified as the database being unavailable again.
func TestMissingPrivilegeIsADeploymentFault(t *testing.T) {
	t.Parallel()
	o := seedOptions()
	o.Accounts = 1
	cfg := deploySeeded(t, strategy.SingleSchema, o, nil)
	ctx := context.Background()
	s, err := strategies.Open(ctx, cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logs := &lockedBuffer{}
	h, err := handlers.New(s, handlers.Options{BaseDomain: cfg.BaseDomain, AllowAnonymous: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a := app{name: strategy.SingleSchema, s: s, h: h, base: cfg.BaseDomain}
	host := "tenant-0." + cfg.BaseDomain
	tasks := a.taskIDs(t, host)
	if len(tasks) == 0 {
		t.Fatal("the seeded tenant has no task")
	}
	db, appRole := pgtest.Admin(t, cfg.Strategy.Database), pgx.Identifier{cfg.Strategy.AppUser}.Sanitize()

	tests := []struct {
		name          string
		revoke, grant string
		method, path  string
		body          string
		refused       string // PostgreSQL's words for it
	}{
		{"the page read without SELECT on subtasks",
			"REVOKE SELECT ON subtasks FROM " + appRole, "GRANT SELECT ON subtasks TO " + appRole,
			http.MethodGet, "/subtasks/1/", "", "permission denied for table subtasks"},
		{"a write without INSERT on a column of subtasks",
			"REVOKE INSERT (name) ON subtasks FROM " + appRole, "GRANT INSERT (name) ON subtasks TO " + appRole,
			http.MethodPost, "/api/subtasks", fmt.Sprintf(`{"task_id": %d, "name": "needs a grant"}`, tasks[0]), "permission denied for table subtasks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strategytest.MustExec(t, db, tt.revoke)
			logs.take()
			rec := a.send(tt.method, host, tt.path, tt.body, false, map[string]string{"Accept": "application/json"})
			body, logged := rec.Body.String(), logs.take()
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("%s %s without the grant = %d %s, want 500", tt.method, tt.path, rec.Code, body)
			}
			if strings.Contains(body, "not reachable") || rec.Header().Get("Retry-After") != "" {
				t.Errorf("%s %s without the grant claims an outage: %s (Retry-After %q)", tt.method, tt.path, body, rec.Header().Get("Retry-After"))
			}
			for _, want := range []string{"deployment fault", "42501", "tenant=tenant-0", tt.method + " " + tt.path, tt.refused, "tenancy check", "tenancy migrate"} {
				if !strings.Contains(logged, want) {
					t.Errorf("%s %s without the grant: the log does not say %q:\n%s", tt.method, tt.path, want, logged)
				}
			}
			strategytest.MustExec(t, db, tt.grant)
			if rec := a.send(tt.method, host, tt.path, tt.body, false, map[string]string{"Accept": "application/json"}); rec.Code >= 300 {
				t.Errorf("%s %s with the grant back = %d %s, want success", tt.method, tt.path, rec.Code, rec.Body)
			}
		})
	}
}
