package singleschema_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenancy/configs"
	"tenancy/internal/pgtest"
	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/singleschema"
)

// BenchmarkCountsContention measures what the trigger-kept subtask counts
// cost writers: 16 connections, each running transactions that insert a
// subtask and delete it again, as the app role under the tenant's
// row-level security, all for ONE tenant or spread over 16. Each such
// transaction changes its tenant's count twice, and holds the lock on
// what it changed until it commits (its WAL flushed), so one tenant's
// writers queue there; spread ones do not. Compare tx/s of the two.
//
//	go test -run '^$' -bench CountsContention -benchtime 5s ./strategy/singleschema
func BenchmarkCountsContention(b *testing.B) {
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
	const writers = 16
	so := seed.DefaultOptions()
	so.Accounts, so.MaxProjects, so.MaxTasks, so.MaxSubtasks = writers, 2, 2, 2
	seeder, err := seed.NewSeeder(admin, 0, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := seeder.Run(ctx, so); err != nil {
		b.Fatal(err)
	}
	// A task of each tenant's, by account id, to put subtasks under.
	tasks := map[int64]int64{}
	rows, err := pgtest.Admin(b, opts.Database).Query(`SELECT account_id, min(id) FROM tasks GROUP BY account_id ORDER BY account_id`)
	if err != nil {
		b.Fatal(err)
	}
	var accounts []int64
	for rows.Next() {
		var a, t int64
		if err := rows.Scan(&a, &t); err != nil {
			b.Fatal(err)
		}
		tasks[a] = t
		accounts = append(accounts, a)
	}
	rows.Close()

	pcfg, err := pgxpool.ParseConfig(opts.AppDSN(opts.Database))
	if err != nil {
		b.Fatal(err)
	}
	pcfg.MaxConns = writers
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()

	writeOnce := func(account int64) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, fmt.Sprint(account)); err != nil {
				return err
			}
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO subtasks (account_id, task_id, name) VALUES ($1, $2, 'contention') RETURNING id`,
				account, tasks[account]).Scan(&id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM subtasks WHERE id = $1`, id)
			return err
		})
	}
	db := pgtest.Admin(b, opts.Database)
	triggers := func(verb string) {
		b.Helper()
		for _, t := range []string{"subtask_counts_insert", "subtask_counts_delete"} {
			if _, err := db.Exec(fmt.Sprintf("ALTER TABLE subtasks %s TRIGGER %s", verb, t)); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		tenants  []int64
		noCounts bool
	}{
		{"one tenant", accounts[:1], false},
		{fmt.Sprintf("%d tenants", len(accounts)), accounts, false},
		// The same one tenant with the count triggers off (as the admin;
		// the transactions insert and delete, so the counts stay true):
		// what is left of the queue is not the counts'.
		{"one tenant, no count triggers", accounts[:1], true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.noCounts {
				triggers("DISABLE")
				defer triggers("ENABLE")
			}
			var next atomic.Int64
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine keeps to one tenant of the list.
				account := tc.tenants[int(next.Add(1))%len(tc.tenants)]
				for pb.Next() {
					if err := writeOnce(account); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
	var left int64
	if err := db.QueryRow(`SELECT count(*) FROM subtasks WHERE name = 'contention'`).Scan(&left); err != nil || left != 0 {
		b.Errorf("%d subtasks of the benchmark left (err %v), want 0", left, err)
	}
}
