package singleschema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

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
	// The counts before subtasks: the count triggers, made on subtasks'
	// shards, write subtask_counts' shards.
	{"subtask_counts", "SELECT create_distributed_table('public.subtask_counts', 'account_id', colocate_with => 'public.users')"},
	{"subtasks", "SELECT create_distributed_table('public.subtasks', 'account_id', colocate_with => 'public.users')"},
}

// distribute makes the migrated shared schema Citus's, as citusTables
// says; tables already distributed are left as they are, so setup and
// migrate run it every time, and moved says whether it distributed any.
// Its own transaction: a failure leaves every table as it was.
//
// Two Citus settings, for this transaction only: local tables that refer
// to accounts stay local until their own turn (by default Citus would make
// them "Citus local tables" when accounts becomes a reference table, and
// then refuse to distribute them, since they have identity columns); and
// the count triggers may be made on subtasks' shards. Citus calls such
// triggers unsafe because it cannot know what they touch; these touch only
// the co-located shard of subtask_counts, one account_id at a time
// (migration 00009), and so run on the worker that has the tenant's rows.
func distribute(ctx context.Context, pool *sql.DB) (moved bool, err error) {
	err = pg.WithTx(ctx, pool, func(tx *sql.Tx) error {
		for _, s := range []string{
			"SET LOCAL citus.enable_local_reference_table_foreign_keys = off",
			"SET LOCAL citus.enable_unsafe_triggers = on",
		} {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("distribute the tables (%s): %w", s, err)
			}
		}
		moved = false
		for _, t := range citusTables {
			// From Citus's catalog, not its citus_tables view, which
			// sums every table's size over the nodes; hash-distributed
			// or a reference table, not a "Citus local table".
			var done bool
			err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition
				WHERE logicalrelid = to_regclass('public.' || $1) AND (partmethod = 'h' OR repmodel = 't'))`, t.table).Scan(&done)
			if err != nil {
				return fmt.Errorf("distribute table %s: look it up: %w", t.table, err)
			}
			if done {
				continue
			}
			if t.table == "subtasks" {
				// A TRUNCATE trigger on a shard of subtasks cannot empty
				// every shard of subtask_counts (a distributed statement
				// from within one on a shard), and a trigger dropped after
				// distributing stays on the shards: subtasks is distributed
				// without it, and gets the coordinator's own below.
				if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS subtask_counts_truncate ON public.subtasks"); err != nil {
					return fmt.Errorf("distribute table subtasks: drop its TRUNCATE trigger: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, t.how); err != nil {
				return fmt.Errorf("distribute table %s: %w", t.table, err)
			}
			moved = true
		}
		if err := truncateOnCoordinator(ctx, tx); err != nil {
			return err
		}
		if !moved {
			return nil
		}
		for _, s := range []string{
			// Rows already there were copied into the shards, count
			// triggers and all: count them again.
			"DELETE FROM public.subtask_counts",
			"INSERT INTO public.subtask_counts (account_id, subtasks) SELECT account_id, count(*) FROM public.subtasks GROUP BY account_id",
		} {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("distribute the tables (%s): %w", s, err)
			}
		}
		return nil
	})
	return moved, err
}

// truncateOnCoordinator keeps the counts true when subtasks is truncated
// through the coordinator, as migration 00004's TRUNCATE trigger does on
// plain PostgreSQL. Citus truncates the shards, then the coordinator's own
// (empty) table, whose AFTER TRUNCATE trigger then runs there, once per
// statement. So the trigger is made on the coordinator only (DDL
// propagation off: on the shards it could not reach the other shards of
// subtask_counts), and its function empties every shard of the counts
// from there. The function runs with the rights of whoever truncated
// (only the admin, subtasks' owner, may): the counts owner, whose rights
// 00004's function takes, cannot log in, and Citus reaches the workers as
// the current role. DELETE rather than TRUNCATE: Reset truncates the
// counts in the same statement as subtasks, and a table that statement
// holds open cannot be truncated again. A TRUNCATE sent to a worker (from
// its copy of the tables' metadata) does not fire it.
func truncateOnCoordinator(ctx context.Context, tx *sql.Tx) error {
	for _, s := range []string{
		`CREATE OR REPLACE FUNCTION public.subtask_counts_clear_distributed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM public.subtask_counts;
    RETURN NULL;
END
$$`,
		"REVOKE ALL ON FUNCTION public.subtask_counts_clear_distributed() FROM PUBLIC",
		"SET LOCAL citus.enable_ddl_propagation = off",
		`CREATE OR REPLACE TRIGGER subtask_counts_truncate AFTER TRUNCATE ON public.subtasks
    FOR EACH STATEMENT EXECUTE FUNCTION public.subtask_counts_clear_distributed()`,
		"SET LOCAL citus.enable_ddl_propagation = on",
	} {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("make the coordinator's TRUNCATE trigger on subtasks (%s): %w", firstLine(s), err)
		}
	}
	return nil
}

// firstLine is s up to its first line break, for errors that name a
// statement.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Citus draws each new row's id on the coordinator and writes it to the
// shard, so the app role needs INSERT on the id columns of the shards,
// which it has not on the tables themselves (migration 00005: ids are the
// database's). On the shards that lets a role connected to a worker
// choose ids in its own tenant only (row-level security, and keys that
// include account_id). Three things give it, none leaving a moment
// without it:
//
//   - the hook (installShardGrantHook), installed on every node before
//     the tables are distributed, grants it on each shard as Citus creates
//     it, before the shard holds rows or serves a statement: those the
//     distribution makes, and those a move or a split makes afresh from
//     the distributed table later. A node added later has no hook until
//     the next setup or migrate, which must therefore run before shards
//     are moved onto it;
//   - pg.Grants makes it again on every shard (GrantSpec.ShardIDs) in
//     the transaction whose REVOKE ALL takes it away there;
//   - grantMissingShardIDs, after a distribution, grants it on any shard
//     the hook missed, and says so.

// shardsWithoutIDs selects, on the node it runs on, the shards placed
// there of the tables %[2]s (an array of their names) that do not let role
// %[1]s insert their id column.
const shardsWithoutIDs = `SELECT shard FROM (
    SELECT to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid)) AS shard
    FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement p USING (shardid)
    WHERE p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group)
      AND s.logicalrelid = ANY (%[2]s::regclass[])) shards
WHERE shard IS NOT NULL AND NOT pg_catalog.has_column_privilege(%[1]s, shard, 'id', 'INSERT')`

// grantMissingShardIDs grants app INSERT (id) on every shard that lacks
// it, looked for on all nodes at once (a connection per node, not per
// shard), and returns those it granted it on: none when the hook did its
// work.
func grantMissingShardIDs(ctx context.Context, pool *sql.DB, app string) ([]string, error) {
	var tables []string
	for _, t := range pg.ShardGrantTables() {
		tables = append(tables, pg.QuoteLiteral("public."+pg.QuoteIdent(t)))
	}
	missing := fmt.Sprintf(shardsWithoutIDs, pg.QuoteLiteral(app), "ARRAY["+strings.Join(tables, ", ")+"]")
	var found []string
	err := onAllNodes(ctx, pool, "SELECT coalesce(string_agg(shard::text, ' ' ORDER BY shard::text), '') FROM ("+missing+") missing",
		func(result string) { found = append(found, strings.Fields(result)...) })
	if err != nil {
		return nil, fmt.Errorf("look for shards without INSERT (id): %w", err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	grant := fmt.Sprintf(`DO $do$ DECLARE lacking regclass; BEGIN
    FOR lacking IN %s LOOP
        EXECUTE format('GRANT INSERT (id) ON %%s TO %%I', lacking, %s);
    END LOOP;
END $do$`, missing, pg.QuoteLiteral(app))
	if err := onAllNodes(ctx, pool, grant, nil); err != nil {
		return nil, fmt.Errorf("grant INSERT (id) on the shards %s: %w", strings.Join(found, ", "), err)
	}
	return found, nil
}

// onAllNodes runs command on every node of the Citus cluster
// (run_command_on_all_nodes), and hands each node's result to each.
func onAllNodes(ctx context.Context, pool *sql.DB, command string, each func(result string)) error {
	rows, err := pool.QueryContext(ctx, `SELECT nodeid, success, result FROM run_command_on_all_nodes($1)`, command)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var node int
		var ok bool
		var result string
		if err := rows.Scan(&node, &ok, &result); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("on node %d: %s", node, result)
		}
		if each != nil {
			each(result)
		}
	}
	return rows.Err()
}

// installShardGrantHook makes the hook's function on the coordinator,
// which Citus propagates to every worker (and to workers added later,
// with the other distributed objects), and the event trigger that calls
// it on every node that lacks it: Citus propagates no event trigger. The
// function matches the shards by name (Citus names a shard
// <table>_<shard id>, in the table's schema) and runs as whoever creates
// the table: Citus creates shards as the table's owner, who may grant on
// them. ENABLE ALWAYS, also when found disabled: it must fire whatever
// session_replication_role the session that creates the shard has.
func installShardGrantHook(ctx context.Context, pool *sql.DB, app string) error {
	fn := fmt.Sprintf(`CREATE OR REPLACE FUNCTION public.%[1]s() RETURNS event_trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    created record;
BEGIN
    FOR created IN SELECT c.oid FROM pg_event_trigger_ddl_commands() e
                   JOIN pg_class c ON c.oid = e.objid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE e.command_tag = 'CREATE TABLE' AND n.nspname = 'public'
                     AND c.relname ~ '^(%[2]s)_[0-9]+$'
    LOOP
        EXECUTE format('GRANT INSERT (id) ON %%s TO %%I', created.oid::regclass, %[3]s);
    END LOOP;
END
$fn$`, pg.ShardGrantHook, strings.Join(pg.ShardGrantTables(), "|"), pg.QuoteLiteral(app))
	// Made again only when it differs: Citus passes a CREATE OR REPLACE
	// on to every node even when nothing changes, most of a no-op
	// migrate's time for the hook.
	var same bool
	err := pool.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p
		WHERE p.oid = to_regprocedure('public.' || $1 || '()') AND p.prosrc = $2
		  AND p.proacl IS NOT NULL AND NOT EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0))`,
		pg.ShardGrantHook, fn[strings.Index(fn, "$fn$")+len("$fn$"):strings.LastIndex(fn, "$fn$")]).Scan(&same)
	if err != nil {
		return fmt.Errorf("look up the shard grant hook: %w", err)
	}
	for _, s := range []string{fn, "REVOKE ALL ON FUNCTION public." + pg.ShardGrantHook + "() FROM PUBLIC"} {
		if same {
			break
		}
		if _, err := pool.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("install the shard grant hook: %w", err)
		}
	}
	trigger := fmt.Sprintf(`DO $do$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = '%[1]s') THEN
        CREATE EVENT TRIGGER %[1]s ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION public.%[1]s();
    END IF;
    ALTER EVENT TRIGGER %[1]s ENABLE ALWAYS;
END $do$`, pg.ShardGrantHook)
	if err := onAllNodes(ctx, pool, trigger, nil); err != nil {
		return fmt.Errorf("install the shard grant hook on every node: %w", err)
	}
	return nil
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
