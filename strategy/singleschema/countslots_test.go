package singleschema

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenancy/internal/pgtest"
	"tenancy/strategy/strategytest"
)

// TestCountSlotsSpreadOneTenantsWriters: writers of one tenant on different
// connections add to different slot rows (so they do not queue on one),
// and the count read through subtask_counts stays exact.
func TestCountSlotsSpreadOneTenantsWriters(t *testing.T) {
	t.Parallel()
	opts, _, a, _ := twoTenants(t)
	db := pgtest.Admin(t, opts.Database)
	task := strategytest.Int64s(t, db, `SELECT min(id) FROM tasks WHERE account_id = $1`, int64(a.ID))[0]
	ctx := context.Background()
	const writers, rounds = 8, 10
	pcfg, err := pgxpool.ParseConfig(opts.AppDSN(opts.Database))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MinConns, pcfg.MaxConns = writers, writers
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Hold every connection at once, so the writers run on eight backends.
	conns := make([]*pgxpool.Conn, writers)
	for i := range conns {
		if conns[i], err = pool.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Release()
			for r := 0; r < rounds && errs[i] == nil; r++ {
				errs[i] = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, fmt.Sprint(a.ID)); err != nil {
						return err
					}
					// Two in, one out: the count grows by one a round.
					var id int64
					if err := tx.QueryRow(ctx, `INSERT INTO subtasks (account_id, task_id, name) VALUES ($1, $2, 'slot'), ($1, $2, 'slot') RETURNING id`, int64(a.ID), task).Scan(&id); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `DELETE FROM subtasks WHERE id = $1`, id)
					return err
				})
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	kept := strategytest.Int64s(t, db, `SELECT subtasks FROM subtask_counts WHERE account_id = $1`, int64(a.ID))[0]
	real := strategytest.Int64s(t, db, `SELECT count(*) FROM subtasks WHERE account_id = $1`, int64(a.ID))[0]
	if want := int64(3 + writers*rounds); kept != real || real != want {
		t.Errorf("after %d writers: kept count %d, count(*) %d; want both %d", writers, kept, real, want)
	}
	slots := strategytest.Int64s(t, db, `SELECT count(*) FROM subtask_count_slots WHERE account_id = $1`, int64(a.ID))[0]
	if slots < 2 {
		t.Errorf("%d writers on their own connections wrote %d slot row(s), want several", writers, slots)
	}
}

// TestCountsViewKeepsRowLevelSecurity: subtask_counts is a view over the
// slots, read with the reader's rights (security_invoker), so the app role
// sees its tenant's count only. Made to run with its owner's rights, it
// shows every tenant's: what the option prevents.
func TestCountsViewKeepsRowLevelSecurity(t *testing.T) {
	t.Parallel()
	opts, _, a, b := twoTenants(t)
	db := pgtest.Admin(t, opts.Database)
	ctx := context.Background()
	app, err := pgx.Connect(ctx, opts.AppDSN(opts.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	seen := func() []int64 {
		t.Helper()
		var ids []int64
		err := pgx.BeginFunc(ctx, app, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, fmt.Sprint(a.ID)); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT account_id FROM subtask_counts ORDER BY account_id`)
			if err != nil {
				return err
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	for _, tc := range []struct {
		invoker string
		want    []int64
	}{{"true", []int64{int64(a.ID)}}, {"false", []int64{int64(a.ID), int64(b.ID)}}} {
		strategytest.MustExec(t, db, "ALTER VIEW subtask_counts SET (security_invoker = "+tc.invoker+")")
		if got := seen(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("security_invoker = %s: app role as tenant %d sees the counts of accounts %v, want %v", tc.invoker, a.ID, got, tc.want)
		}
	}
	strategytest.MustExec(t, db, "ALTER VIEW subtask_counts SET (security_invoker = true)")
}
