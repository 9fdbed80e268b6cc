package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"tenancy/strategy/internal/pg"
)

// checkShardGrants, on a Citus coordinator with singleschema's tables
// distributed: every node has the hook that grants the app role INSERT
// (id) on each shard Citus creates (a node added after the last setup or
// migrate has none, and shards moved onto it would lack the grant), and
// every shard of the tables whose ids the coordinator draws has that
// grant. Either missing makes the app role's inserts for the tenants on
// those shards fail (closed: nothing is written).
func checkShardGrants(ctx context.Context, db *sql.DB, database, app string, rep *Report) error {
	distributed, err := pg.IsDistributed(ctx, db, "public.subtasks")
	if err != nil || !distributed {
		return err
	}
	nodes, err := stringColumn(ctx, db, `SELECT n.nodename || ':' || n.nodeport
		FROM run_command_on_all_nodes($1) r JOIN pg_dist_node n USING (nodeid)
		WHERE NOT r.success OR r.result <> '1' ORDER BY 1`,
		fmt.Sprintf(`SELECT count(*) FROM pg_event_trigger WHERE evtname = %s AND evtenabled = 'A'`, pg.QuoteLiteral(pg.ShardGrantHook)))
	if err != nil {
		return fmt.Errorf("look for the shard grant hook on the nodes of %s: %w", database, pg.Classify(err))
	}
	if len(nodes) > 0 {
		rep.add(Finding{Kind: FindingGrantMissing, Database: database, Subject: "Citus node " + strings.Join(nodes, ", "),
			Problem: fmt.Sprintf("it lacks the event trigger %s, so a shard moved or split onto it will not let role %q insert (a tenant's writes fail there)", pg.ShardGrantHook, app),
			Fix:     "run `tenancy migrate` (it installs the hook on every node), before moving shards onto the node"})
	}
	var missing []string
	for _, table := range pg.ShardGrantTables() {
		shards, err := stringColumn(ctx, db, `SELECT shardid || ' on ' || nodename || ':' || nodeport FROM run_command_on_placements($1, $2)
			WHERE NOT success OR result <> 't' ORDER BY shardid`,
			"public."+table, fmt.Sprintf(`SELECT has_column_privilege(%s, '%%s', 'id', 'INSERT')`, pg.QuoteLiteral(app)))
		if err != nil {
			return fmt.Errorf("read the grants on the shards of %s in %s: %w", table, database, pg.Classify(err))
		}
		for _, s := range shards {
			missing = append(missing, table+" shard "+s)
		}
	}
	if len(missing) > 0 {
		rep.add(Finding{Kind: FindingGrantMissing, Database: database, Subject: "Citus shards " + strings.Join(missing, ", "),
			Problem: fmt.Sprintf("role %q may not insert their id column, which Citus fills in on the coordinator, so the inserts of the tenants on them fail", app),
			Fix:     "run `tenancy migrate` (it grants INSERT (id) on every shard)"})
		return nil
	}
	rep.checked("%s (Citus): the shard grant hook on every node; INSERT (id) for %s on every shard of %s", database, app, strings.Join(pg.ShardGrantTables(), ", "))
	return nil
}
