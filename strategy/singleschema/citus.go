package singleschema

import (
	"context"
	"database/sql"
	"fmt"

	"tenancy/strategy/internal/pg"
)

// distributableVersion is the migration from which on the shared schema
// can be distributed (00009_distributable.sql).
const distributableVersion = 9

// citusTables are how setup distributes the shared schema on a Citus
// coordinator, in this order: accounts copied to every node (a reference
// table: every tenant's rows refer to it, and it is small), the tenants'
// tables split by account_id into shards co-located with users', so that
// one tenant's rows of every table are on one worker and a tenant's
// statement, joins and count triggers included, runs there alone.
var citusTables = []struct{ table, how string }{
	{"accounts", "SELECT create_reference_table('public.accounts')"},
	{"users", "SELECT create_distributed_table('public.users', 'account_id')"},
	{"projects", "SELECT create_distributed_table('public.projects', 'account_id', colocate_with => 'public.users')"},
	{"tasks", "SELECT create_distributed_table('public.tasks', 'account_id', colocate_with => 'public.users')"},
	{"subtasks", "SELECT create_distributed_table('public.subtasks', 'account_id', colocate_with => 'public.users')"},
	{"subtask_counts", "SELECT create_distributed_table('public.subtask_counts', 'account_id', colocate_with => 'public.users')"},
}

// distribute makes the migrated shared schema Citus's, as citusTables
// says; tables already distributed are left as they are, so setup and
// migrate run it every time. Its own transaction: a failure leaves every
// table as it was.
//
// Two Citus settings, for this transaction only: local tables that refer
// to accounts stay local until their own turn (by default Citus would make
// them "Citus local tables" when accounts becomes a reference table, and
// then refuse to distribute them, since they have identity columns); and
// the count triggers may be made on subtasks' shards. Citus calls such
// triggers unsafe because it cannot know what they touch; these touch only
// the co-located shard of subtask_counts, one account_id at a time
// (migration 00009), and so run on the worker that has the tenant's rows.
func distribute(ctx context.Context, pool *sql.DB) error {
	return pg.WithTx(ctx, pool, func(tx *sql.Tx) error {
		for _, s := range []string{
			"SET LOCAL citus.enable_local_reference_table_foreign_keys = off",
			"SET LOCAL citus.enable_unsafe_triggers = on",
		} {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("distribute the tables (%s): %w", s, err)
			}
		}
		for _, t := range citusTables {
			var kind sql.NullString
			err := tx.QueryRowContext(ctx, `SELECT citus_table_type FROM public.citus_tables WHERE table_name = to_regclass('public.' || $1)`, t.table).Scan(&kind)
			if err != nil && err != sql.ErrNoRows {
				return fmt.Errorf("distribute table %s: look it up: %w", t.table, err)
			}
			if kind.Valid {
				continue
			}
			if _, err := tx.ExecContext(ctx, t.how); err != nil {
				return fmt.Errorf("distribute table %s: %w", t.table, err)
			}
		}
		return nil
	})
}

// roleDatabase is where setup creates the roles: the maintenance database
// m, or, when the deployment's database exists already and is a Citus
// coordinator, that database, so that Citus creates each role on the
// workers too (it does so only for roles made in a database that has the
// extension, and the workers' connections run as the app and reader
// roles). The caller closes a pool that is not m.
func (a *Admin) roleDatabase(ctx context.Context, m *sql.DB) (*sql.DB, error) {
	var exists bool
	if err := m.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, a.opts.Database).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up database %q: %w", a.opts.Database, pg.Classify(err))
	}
	if !exists {
		return m, nil
	}
	db, err := pg.OpenPool(a.opts.AdminDSN(a.opts.Database), 1, 1)
	if err != nil {
		return nil, err
	}
	citus, err := pg.IsCitus(ctx, db)
	if err != nil || !citus {
		db.Close()
		return m, err
	}
	return db, nil
}
