package multischema_test

// Faults under load: one tenant's schema or role dropped while every
// tenant is served.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"tenancy/internal/loadcheck"
	"tenancy/internal/pgtest"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multischema"
	"tenancy/strategy/strategytest"
)

// The message the user sees (handlers/errors.go); the test checks the user
// is told something clear, not how it is worded to the letter.
const tenantUnreachableMessage = "This tenant's data is not available right now"

// lockForDrop begins a transaction that locks schema's tables in the
// order a page reads them. A DROP ... CASCADE alone locks them in its own
// order (projects, then tasks for its foreign key) and can deadlock with a
// page read holding tasks and waiting for projects; dropTenant retries.
func lockForDrop(schema string) string {
	s := pg.QuoteIdent(schema)
	return "BEGIN; LOCK TABLE " + s + ".subtask_counts, " + s + ".subtasks, " + s + ".tasks, " + s + ".projects, " + s + ".users IN ACCESS EXCLUSIVE MODE; "
}

// TestMultiSchemaOneTenantGone breaks one tenant while all tenants are
// under load: that tenant gets 503 saying its data is not available, and
// every other tenant keeps getting every page. As for a dropped multidb
// database, 503 rather than 404: the account still exists; its storage
// is what is missing.
func TestMultiSchemaOneTenantGone(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(schema, role string) []string // run as the admin
	}{
		{"schema dropped", func(schema, _ string) []string {
			return []string{lockForDrop(schema) + "DROP SCHEMA " + pg.QuoteIdent(schema) + " CASCADE; COMMIT"}
		}},
		{"role dropped", func(schema, role string) []string {
			return []string{"DROP OWNED BY " + pg.QuoteIdent(role), "DROP ROLE " + pg.QuoteIdent(role)}
		}},
		{"a table dropped", func(schema, _ string) []string {
			return []string{lockForDrop(schema) + "DROP TABLE " + pg.QuoteIdent(schema) + ".projects CASCADE; COMMIT"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := multischema.Harness()
			d := strategytest.NewLoadDeployment(t, h, pgtest.Env(t, strategy.MultiSchema, nil))
			_, srv := strategytest.Serve(t, h.Open, d.Opts, nil)
			const broken = "tenant-1"
			load := loadcheck.Options{URL: srv.URL, BaseDomain: "localhost", Tenants: d.Slugs, Concurrency: 4, Expect: d.Expect}

			stop := strategytest.Background(t, load)
			time.Sleep(500 * time.Millisecond)
			// Seeded tenant-i has id i+1.
			schema, role := multischema.SchemaOf(2), multischema.RoleOf(d.Opts, 2)
			strategytest.MustExec(t, pgtest.Admin(t, d.Opts.Database), tt.breakIt(schema, role)...)
			time.Sleep(1500 * time.Millisecond)
			during := stop()
			t.Logf("load while %s's %s:\n%s", broken, tt.name, strategytest.Report(during))

			for _, slug := range d.Slugs {
				tr := during.PerTenant[slug]
				switch {
				case slug == broken && tr.Failed == 0:
					t.Errorf("%s: no request failed once its %s", slug, tt.name)
				case slug != broken && (tr.Failed != 0 || tr.OK == 0):
					t.Errorf("%s: %d OK, %d failed after %s's %s; want all OK", slug, tr.OK, tr.Failed, broken, tt.name)
				}
			}
			for a, n := range during.Answers {
				if a.Status != http.StatusServiceUnavailable {
					t.Errorf("%d requests got %d %q, want 503", n, a.Status, a.Message)
				}
			}
			if during.LeakedRows != 0 || during.Mismatches != 0 {
				t.Errorf("%d leaked rows, %d mismatched pages, want none", during.LeakedRows, during.Mismatches)
			}
			for _, path := range []string{"/subtasks/", "/subtasks/2/"} {
				status, body := strategytest.GetJSON(t, srv, broken+".localhost", path)
				if status != http.StatusServiceUnavailable || !strings.Contains(body, tenantUnreachableMessage) {
					t.Errorf("GET %s %s = %d %s, want 503 saying %q", broken, path, status, body, tenantUnreachableMessage)
				}
			}
		})
	}
}
