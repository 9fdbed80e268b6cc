package singleschema_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"tenancy/configs"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/singleschema"
)

// BenchmarkTenantPageRLS measures what row-level security costs the tenant
// list page: the same ListSubtasks, through the same code and on the same
// data, once as the app role (the policies in force) and once as a role
// with BYPASSRLS, which the server itself refuses to run as (so this setup
// exists only here). With -v it logs the EXPLAIN ANALYZE of the page as
// both roles, which shows where the difference goes.
//
//	go test -run '^$' -bench TenantPageRLS -benchtime 5s -v ./strategy/singleschema
//
// RLS_BENCH_ACCOUNTS sets the number of accounts (default 200).
func BenchmarkTenantPageRLS(b *testing.B) {
	accounts := 200
	if v := os.Getenv("RLS_BENCH_ACCOUNTS"); v != "" {
		accounts, _ = strconv.Atoi(v)
	}
	env := pgtest.Env(b, strategy.SingleSchema, nil)
	cfg, err := configs.Load(pgtest.Getenv(env))
	if err != nil {
		b.Fatal(err)
	}
	opts := cfg.Strategy
	ctx := context.Background()
	admin, err := singleschema.NewAdmin(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Setup(ctx, nil); err != nil {
		b.Fatal(err)
	}
	so := seed.DefaultOptions()
	so.Accounts = accounts
	seeder, err := seed.NewSeeder(admin, 0, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := seeder.Run(ctx, so); err != nil {
		b.Fatal(err)
	}

	// The bypassing role: a member of the app role (so the same grants),
	// with BYPASSRLS and the same plan settings.
	bypass := opts.AppUser + "_bypass"
	db := pgtest.Admin(b, opts.Database)
	b.Cleanup(func() { pgtest.Drop(b, "", bypass) })
	for _, stmt := range []string{
		"VACUUM (ANALYZE)",
		fmt.Sprintf(`CREATE ROLE %q LOGIN BYPASSRLS IN ROLE %q`, bypass, opts.AppUser),
		fmt.Sprintf(`ALTER ROLE %q IN DATABASE %q SET plan_cache_mode = force_generic_plan`, bypass, opts.Database),
	} {
		if _, err := db.Exec(stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}

	policies, err := singleschema.Open(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer policies.Close()
	bypassOpts := opts
	bypassOpts.AppUser = bypass
	bypassing, err := singleschema.OpenWithoutRoleChecks(bypassOpts)
	if err != nil {
		b.Fatal(err)
	}
	defer bypassing.Close()

	tenants, err := policies.Tenants(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pages := make([]int, len(tenants))
	largest := 0
	for i, t := range tenants {
		p, err := policies.ListSubtasks(models.NewContextWithTenant(ctx, t), 1, 10)
		if err != nil {
			b.Fatal(err)
		}
		pages[i] = p.Pages
		if p.Pages > pages[largest] {
			largest = i
		}
	}

	runs := []struct {
		name string
		s    strategy.Strategy
		role string
	}{{"policies", policies, opts.AppUser}, {"bypassrls", bypassing, bypass}}
	for _, run := range runs {
		explainPage(b, run.s, opts, run.role, tenants[largest], pages[largest])
	}
	// Each side runs three times, alternating, so that neither always has
	// the warmer (or the noisier) moment: go test names the repeats
	// policies#01, bypassrls#01 and so on.
	for i := range 6 {
		run := runs[i%2]
		b.Run(run.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					i := rng.IntN(len(tenants))
					page := 1 + rng.IntN(pages[i])
					p, err := run.s.ListSubtasks(models.NewContextWithTenant(ctx, tenants[i]), page, 10)
					if err != nil {
						b.Error(err)
						return
					}
					if len(p.Rows) == 0 || p.Rows[0].AccountSlug != tenants[i].Slug {
						b.Errorf("%s page %d: %d rows, not the tenant's", tenants[i].Slug, page, len(p.Rows))
						return
					}
				}
			})
		})
	}
}

// explainPage logs the plan and timing of the largest tenant's last page as
// role, in a transaction with the tenant set, as ListSubtasks runs it.
func explainPage(b *testing.B, s strategy.Strategy, opts strategy.Options, role string, t models.Account, page int) {
	b.Helper()
	ctx := context.Background()
	query, args, err := singleschema.TenantPageSQL(models.NewContextWithTenant(ctx, t), s, page, 10)
	if err != nil {
		b.Fatal(err)
	}
	c, err := pgx.Connect(ctx, pgtest.DSN(role, "", opts.Database))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, "SELECT set_config('app.tenant_id', $1, true)", strconv.FormatInt(int64(t.ID), 10)); err != nil {
		b.Fatal(err)
	}
	// EXPLAIN of a statement with bound values plans it for those values
	// (a custom plan); the server's connections run a generic plan of the
	// same shape (see grants).
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+query, args...)
	if err != nil {
		b.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("EXPLAIN as %s (tenant %s, page %d):\n%s", role, t.Slug, page, strings.Join(lines, "\n"))
}
