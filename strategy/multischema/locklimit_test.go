package multischema_test

// The talk's "transaction limits in migrations" caveat, reproduced: one
// transaction that migrates every tenant's schema takes a lock on every
// table, index, sequence and TOAST table it creates or alters, and keeps
// them all until it commits. PostgreSQL's lock table is shared and sized at
// start (max_locks_per_transaction × (max_connections + max_prepared_transactions
// + background processes), plus some slack), so past some number of schemas
// the transaction fails with "out of shared memory". Migrate runs each
// schema's migrations in transactions of their own, which hold one schema's
// locks at a time.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multischema"
	"tenancy/strategy/multischema/migrations"
	"tenancy/strategy/strategytest"
)

func TestMigratingEverySchemaInOneTransactionRunsOutOfLocks(t *testing.T) {
	// A server of its own with PostgreSQL's default sizes (100 connections,
	// 64 locks per transaction), not whatever the shared one was given.
	cluster := pgtest.NewCluster(t)
	opts := strategy.Options{
		Strategy: strategy.MultiSchema, Host: "127.0.0.1", Port: cluster.Port, SSLMode: "disable",
		AdminUser: "postgres", Database: "locklimit", AppUser: "locklimit_app", ReaderUser: "locklimit_reader",
		MaxConns: 4,
	}
	ctx := context.Background()
	admin := strategytest.OpenAdmin(t, multischema.Harness(), opts)
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	db, err := sql.Open("pgx", opts.AdminDSN(opts.Database))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	settings := strategytest.Int64s(t, db, `SELECT current_setting('max_locks_per_transaction')::bigint
		UNION ALL SELECT current_setting('max_connections')::bigint`)
	if settings[0] != 64 || settings[1] != 100 {
		t.Fatalf("the throwaway server has max_locks_per_transaction %d and max_connections %d; want PostgreSQL's defaults, 64 and 100", settings[0], settings[1])
	}

	// More accounts than one transaction can migrate on a default server
	// (it ran out at about 290 schemas when this was written).
	const schemas = 400
	strategytest.MustExec(t, db, fmt.Sprintf(
		`INSERT INTO public.accounts (slug, name) SELECT 'tenant-' || i, 'Tenant ' || i FROM generate_series(1, %d) i`, schemas))
	ids := strategytest.Int64s(t, db, `SELECT id FROM public.accounts ORDER BY id`)

	migrated, err := migrateAllInOneTransaction(ctx, db, ids)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "53200" {
		t.Fatalf("one transaction migrating %d schemas: got %v after %d schemas; want out of shared memory (53200)", schemas, err, migrated)
	}
	t.Logf("one transaction ran out of lock slots after migrating %d of %d schemas: %v (hint: %s)", migrated, schemas, err, pgErr.Hint)
	if migrated == 0 {
		t.Fatalf("the first schema already failed; the limit the test shows is the shared lock table's, not a broken migration")
	}
	if n := strategytest.Int64s(t, db, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\_%'`); n[0] != 0 {
		t.Fatalf("%d tenant schemas left after the failed transaction; want none (it rolled back)", n[0])
	}

	// What the project does: each schema migrated in its own transactions.
	rep, err := admin.Migrate(ctx, nil, strategy.MigrateOptions{})
	if err != nil {
		t.Fatalf("Migrate, one schema per transaction: %v", err)
	}
	if got := len(rep.Databases) - 1; got != schemas { // the first report is the shared schema's
		t.Fatalf("Migrate reported %d tenant schemas; want %d", got, schemas)
	}
	tables := strategytest.Int64s(t, db, `SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'tenant\_%' AND tablename = 'subtasks'`)
	if tables[0] != schemas {
		t.Fatalf("%d tenant schemas have a subtasks table after Migrate; want %d", tables[0], schemas)
	}
}

// migrateAllInOneTransaction creates and migrates the schema of every id in
// a single transaction, as the admin, and says how many it finished before
// the error. It always rolls back.
func migrateAllInOneTransaction(ctx context.Context, db *sql.DB, ids []int64) (int, error) {
	up, err := tenantUp()
	if err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	for i, id := range ids {
		schema := pg.QuoteIdent(multischema.SchemaOf(models.TenantID(id)))
		if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+schema+"; SET LOCAL search_path = "+schema+", public; "+up); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}

// tenantUp is the Up half of every tenant migration, in order.
func tenantUp() (string, error) {
	var up strings.Builder
	err := fs.WalkDir(migrations.Tenant(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.Tenant(), path)
		if err != nil {
			return err
		}
		text, _, _ := strings.Cut(string(b), "-- +goose Down")
		up.WriteString(text)
		up.WriteString("\n")
		return nil
	})
	return up.String(), err
}
