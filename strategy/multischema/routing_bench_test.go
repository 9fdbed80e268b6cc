package multischema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"tenancy/configs"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"
)

// BenchmarkTenantPageRouting measures what taking a tenant on costs the
// tenant list page, on the same data and the same connections (the
// server's budget), random tenants and pages:
//
//   - qualified: what the server does (readInOneTrip, on its pool). The
//     page statement names the tenant's schema; the pipeline takes on the
//     tenant's role (set_config('role', ..., true)) and runs the
//     statement, prepared on the connection once it is seen again, and
//     unnamed (planned for the one request) until then.
//   - search_path: the way django-tenants and gorm-multitenancy route. One
//     statement with plain names for every tenant; the pipeline takes on
//     the tenant's role and puts its schema first on the search_path.
//     PostgreSQL plans the statement again whenever the search_path differs
//     from the last execution's: for random tenants, on nearly every
//     request.
//   - no_routing: the qualified statement with nothing taken on, as a role
//     granted every tenant's tables (which the server never is): the floor.
//   - server: Server.ListSubtasks, the qualified way and everything around
//     it (the tenant's audit, the rows' check), one page at a time: its
//     ns/op is the time of one page.
//
// Each runs three times, alternating, so that none always has the warmer
// moment.
//
//	go test -run '^$' -bench TenantPageRouting -benchtime 5s ./strategy/multischema
//
// ROUTING_BENCH_ACCOUNTS sets the number of tenants (default 100).
func BenchmarkTenantPageRouting(b *testing.B) {
	accounts := 100
	if v := os.Getenv("ROUTING_BENCH_ACCOUNTS"); v != "" {
		var err error
		if accounts, err = strconv.Atoi(v); err != nil || accounts < 2 {
			b.Fatalf("ROUTING_BENCH_ACCOUNTS=%q: want a number of tenants, at least 2", v)
		}
	}
	ctx := context.Background()
	cfg, err := configs.Load(pgtest.Getenv(pgtest.Env(b, strategy.MultiSchema, nil)))
	if err != nil {
		b.Fatal(err)
	}
	opts := cfg.Strategy
	admin, err := NewAdmin(opts)
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
	s, err := Open(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tenants, err := s.Tenants(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pagesOf := make([]int, len(tenants))
	for i, t := range tenants {
		p, err := s.ListSubtasks(models.NewContextWithTenant(ctx, t), 1, 10)
		if err != nil {
			b.Fatal(err)
		}
		pagesOf[i] = p.Pages
	}
	everyone := readEveryTenant(b, opts, tenants)
	defer everyone.Close()

	// The raw variants read through a pool of the server's size.
	app, err := pg.OpenPool(opts.AppDSN(opts.Database), opts.Budget(), opts.Budget())
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	var plain, qualified pages.Statements
	read := map[string]func(models.Account, int) (int, error){
		"qualified": func(t models.Account, page int) (int, error) {
			query, args, err := qualified.Statement(ctx, s.app, pageQuery, t, page, 10)
			if err != nil {
				return 0, err
			}
			var n int
			err = s.readInOneTrip(ctx, t, query, args, func(rows pgx.Rows) error {
				n, err = countRows(rows, t)
				return err
			})
			return n, err
		},
		"search_path": func(t models.Account, page int) (int, error) {
			query, args, err := plain.Statement(ctx, s.app, pages.Query{}, t, page, 10)
			if err != nil {
				return 0, err
			}
			return readAs(ctx, app, t, statementName(query), query, args, routeSQL, RoleOf(opts, t.ID), pg.QuoteIdent(SchemaOf(t.ID))+", public")
		},
		"no_routing": func(t models.Account, page int) (int, error) {
			query, args, err := qualified.Statement(ctx, s.app, pageQuery, t, page, 10)
			if err != nil {
				return 0, err
			}
			var n int
			err = pg.WithPgxConn(ctx, everyone, func(c *pgx.Conn) error {
				rows, err := c.Query(ctx, query, args...)
				if err != nil {
					return err
				}
				n, err = countRows(rows, t)
				return err
			})
			return n, err
		},
	}
	for i := range 9 {
		name := []string{"qualified", "search_path", "no_routing"}[i%3]
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(max(1, opts.Budget()/2)) // goroutines: that times GOMAXPROCS
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					i := rng.IntN(len(tenants))
					page := 1 + rng.IntN(pagesOf[i])
					if n, err := read[name](tenants[i], page); err != nil || n == 0 {
						b.Errorf("%s, %s page %d: %d rows, %v", name, tenants[i].Slug, page, n, err)
						return
					}
				}
			})
		})
	}
	b.Run("server", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range b.N {
			i := rng.IntN(len(tenants))
			p, err := s.ListSubtasks(models.NewContextWithTenant(ctx, tenants[i]), 1+rng.IntN(pagesOf[i]), 10)
			if err != nil || len(p.Rows) == 0 {
				b.Fatalf("%s: %d rows, %v", tenants[i].Slug, len(p.Rows), err)
			}
		}
	})
}

// readAs reads one page on a connection of pool as tenant t, routed by
// search_path: the statement take (with takeArgs) and the page in one
// pipeline, once the page statement is prepared on the connection; it is
// prepared as the tenant, in a transaction that reads the page too (one
// statement per page shape, for every tenant).
func readAs(ctx context.Context, pool *sql.DB, t models.Account, name, query string, args []any, take string, takeArgs ...any) (int, error) {
	var n int
	err := pg.WithPgxConn(ctx, pool, func(c *pgx.Conn) error {
		if !preparedOn(c).use(name) {
			tx, err := c.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx) //nolint:errcheck // read-only
			if _, err := tx.Exec(ctx, take, takeArgs...); err != nil {
				return err
			}
			if _, err := c.Prepare(ctx, name, query); err != nil {
				return err
			}
			evict := preparedOn(c).add(name)
			rows, err := tx.Query(ctx, name, args...)
			if err != nil {
				return err
			}
			if n, err = countRows(rows, t); err != nil {
				return err
			}
			if err := tx.Commit(ctx); err != nil || evict == "" {
				return err
			}
			return c.Deallocate(ctx, evict)
		}
		b := &pgx.Batch{}
		b.Queue(take, takeArgs...)
		b.Queue(name, args...)
		results := c.SendBatch(ctx, b)
		if _, err := results.Exec(); err != nil {
			return errors.Join(err, results.Close())
		}
		rows, err := results.Query()
		if err == nil {
			n, err = countRows(rows, t)
		}
		return errors.Join(err, results.Close())
	})
	return n, err
}

// countRows counts a page's rows, all of which must be t's.
func countRows(rows pgx.Rows, t models.Account) (int, error) {
	var got []pages.Row
	err := pages.Scan(rows, &got)
	rows.Close()
	if err = errors.Join(err, rows.Err()); err != nil {
		return 0, err
	}
	for _, r := range got {
		if r.AccountSlug != t.Slug {
			return 0, fmt.Errorf("a row of %s on %s's page", r.AccountSlug, t.Slug)
		}
	}
	return len(got), nil
}

// readEveryTenant makes a role that may read every tenant's tables, with
// the app role's plan settings, and returns a pool of the server's size as
// it. Its name starts with the deployment's, so the deployment's cleanup
// drops it.
func readEveryTenant(b *testing.B, opts strategy.Options, tenants []models.Account) *sql.DB {
	b.Helper()
	role := opts.Database + "_bench_every_tenant"
	stmts := []string{
		fmt.Sprintf(`CREATE ROLE %s LOGIN`, pg.QuoteIdent(role)),
		fmt.Sprintf(`ALTER ROLE %s IN DATABASE %s SET plan_cache_mode = force_generic_plan`, pg.QuoteIdent(role), pg.QuoteIdent(opts.Database)),
		fmt.Sprintf(`GRANT CONNECT ON DATABASE %s TO %s`, pg.QuoteIdent(opts.Database), pg.QuoteIdent(role)),
		fmt.Sprintf(`GRANT USAGE ON SCHEMA public TO %s`, pg.QuoteIdent(role)),
		fmt.Sprintf(`GRANT SELECT ON public.accounts TO %s`, pg.QuoteIdent(role)),
	}
	for _, t := range tenants {
		schema := pg.QuoteIdent(SchemaOf(t.ID))
		stmts = append(stmts,
			fmt.Sprintf(`GRANT USAGE ON SCHEMA %s TO %s`, schema, pg.QuoteIdent(role)),
			fmt.Sprintf(`GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s`, schema, pg.QuoteIdent(role)))
	}
	db := pgtest.Admin(b, opts.Database)
	for _, stmt := range append(stmts, "VACUUM (ANALYZE)") {
		if _, err := db.Exec(stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
	pool, err := pg.OpenPool(pgtest.DSN(role, "", opts.Database), opts.Budget(), opts.Budget())
	if err != nil {
		b.Fatal(err)
	}
	return pool
}
