package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsCitus reports whether the database db connects to has the citus
// extension: a Citus coordinator (or worker).
func IsCitus(ctx context.Context, db *sql.DB) (bool, error) {
	var citus bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')`).Scan(&citus); err != nil {
		return false, fmt.Errorf("look for the citus extension: %w", Classify(err))
	}
	return citus, nil
}

// IsDistributed reports whether table (schema-qualified) is a Citus
// distributed table, whose rows are on the workers; false when the
// database has no citus extension.
func IsDistributed(ctx context.Context, db *sql.DB, table string) (bool, error) {
	citus, err := IsCitus(ctx, db)
	if err != nil || !citus {
		return false, err
	}
	var distributed bool
	err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = to_regclass($1) AND partmethod = 'h')`, table).Scan(&distributed)
	if err != nil {
		return false, fmt.Errorf("look up whether %s is distributed: %w", table, Classify(err))
	}
	return distributed, nil
}

// ShardGrantHook is the name of the event trigger, and of its function,
// that grants the app role INSERT (id) on each shard Citus creates (see
// singleschema's installShardGrantHook); tenancy check looks for it on
// every node.
const ShardGrantHook = "app_grant_shard_ids"

// ShardGrantTables are singleschema's distributed tables whose rows get
// their ids on the Citus coordinator (subtask_counts has none), so whose
// shards need the app role's INSERT (id).
func ShardGrantTables() []string { return []string{"users", "projects", "tasks", "subtasks"} }

// grantShardIDs gives app INSERT (id) on every shard of those of tables
// that are distributed, and not on the tables themselves, in tx: Citus
// passes a GRANT on a distributed table on to the table's shards in the
// same distributed transaction, so the shards have the grant again when
// the REVOKE ALL before it (Grants) commits, never a moment without it.
// The grant goes to the table and its shards only, not to the copies of
// the table Citus keeps on the workers for their metadata
// (citus.enable_metadata_sync off), and the table's own is taken back on
// the coordinator alone (citus.enable_ddl_propagation off): the ids stay
// the database's (migration 00005). A table not yet distributed has no
// shards, and is left alone.
func grantShardIDs(ctx context.Context, tx *sql.Tx, app string, tables []string) error {
	var distributed []string
	rows, err := tx.QueryContext(ctx, `SELECT t FROM unnest($1::text[]) t
		WHERE EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = to_regclass('public.' || quote_ident(t)))`, tables)
	if err != nil {
		return fmt.Errorf("look up which of %s are distributed: %w", strings.Join(tables, ", "), err)
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		distributed = append(distributed, "public."+QuoteIdent(t))
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(distributed) == 0 {
		return err
	}
	on := strings.Join(distributed, ", ")
	for _, s := range []string{
		"SET LOCAL citus.enable_metadata_sync = off",
		"GRANT INSERT (id) ON " + on + " TO " + QuoteIdent(app),
		"SET LOCAL citus.enable_ddl_propagation = off",
		"REVOKE INSERT (id) ON " + on + " FROM " + QuoteIdent(app),
		"SET LOCAL citus.enable_ddl_propagation = on",
		"SET LOCAL citus.enable_metadata_sync = on",
	} {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("grant INSERT (id) on the shards (%s): %w", s, err)
		}
	}
	return nil
}

// ShardReplaced reports whether err is Citus failing a statement that was
// planned against a shard which, by the time it ran, a shard split (a
// tenant isolated to a shard of its own) had replaced: the split commits
// its new metadata without waiting for reads, and a read planned just
// before finds no entry for the old shard. Nothing was read or written;
// the same statement, planned again, finds the new shard.
func ShardReplaced(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "XX000" &&
		strings.HasPrefix(pgErr.Message, "could not find valid entry for shard ")
}

// NotCommitted marks err as the failure of a transaction that did not
// commit and never will: it failed before its COMMIT was sent, or
// PostgreSQL skipped that COMMIT after an earlier statement of the same
// pipeline failed. Only such a failure may be tried again as a whole;
// one from the COMMIT itself, or after it was sent, leaves the outcome
// unknown. nil stays nil.
func NotCommitted(err error) error {
	if err == nil {
		return nil
	}
	return notCommitted{err}
}

type notCommitted struct{ error }

func (e notCommitted) Unwrap() error { return e.error }

// AgainAfterSplit reports whether a conversation that failed with err
// should be tried once more from its start: Citus replaced a shard it was
// planned on (ShardReplaced), and its transaction did not commit
// (NotCommitted), so nothing of it happened and, planned afresh, it finds
// the new shard. Never after a COMMIT was sent: a write whose outcome is
// unknown must not be made twice.
func AgainAfterSplit(err error) bool {
	var nc notCommitted
	return errors.As(err, &nc) && ShardReplaced(nc.error)
}

// OnceMoreAfterSplit runs try, and once more when its failure says so
// (AgainAfterSplit). try must start its conversation afresh each time,
// results included.
func OnceMoreAfterSplit(try func() error) error {
	err := try()
	if AgainAfterSplit(err) {
		err = try()
	}
	return err
}
