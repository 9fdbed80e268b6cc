package strategy

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"testing"

	"tenancy/internal/pgtest"
)

// vulnerableCounts is the count trigger as it was before it was hardened:
// it names subtask_counts without a schema under a search_path that does
// not list pg_temp, so PostgreSQL looks in the caller's temporary schema
// first.
const vulnerableCounts = `CREATE OR REPLACE FUNCTION public.subtask_counts_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO subtask_counts AS c (account_id, subtasks)
    SELECT %[3]s, count(*) FROM new_rows GROUP BY 1
    ON CONFLICT (account_id) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    RETURN NULL;
END
$$`

// TestCountTriggersCannotMakeTheAppSuperuser reproduces, as the app role,
// the escalation through the count triggers: a temporary table named
// subtask_counts whose trigger runs a temporary function, then one
// ordinary insert into subtasks, so that the SECURITY DEFINER trigger
// writes into the temporary table and the temporary function runs with
// the trigger owner's rights. Each defence is tested on its own: without
// TEMPORARY the attack cannot start; with it granted back, the hardened
// function ignores the temporary table; and a vulnerable function owned by
// the counts role has no rights worth stealing. The last case restores the
// function as it was, owned by the superuser admin, to show the attack is
// real.
func TestCountTriggersCannotMakeTheAppSuperuser(t *testing.T) {
	t.Parallel()
	type level struct {
		name string
		// prepare runs as the admin in the attacked database; %[1]s is the
		// app role, %[2]s the admin role, %[3]s the tenant expression for
		// the vulnerable function, %[4]s the database.
		prepare      []string
		tempRefused  bool // CREATE TEMP TABLE fails with 42501
		wantSuper    bool
		insertFailed bool // the insert itself fails (the stolen rights were not enough)
	}
	levels := []level{
		{name: "as set up", tempRefused: true},
		{name: "TEMPORARY granted back", prepare: []string{"GRANT TEMPORARY ON DATABASE %[4]s TO %[1]s"}},
		{name: "vulnerable function owned by the counts role",
			prepare:      []string{"GRANT TEMPORARY ON DATABASE %[4]s TO %[1]s", vulnerableCounts},
			insertFailed: true},
		{name: "vulnerable function owned by the superuser admin (before the fix)",
			prepare:   []string{"GRANT TEMPORARY ON DATABASE %[4]s TO %[1]s", vulnerableCounts, "ALTER FUNCTION public.subtask_counts_apply() OWNER TO %[2]s"},
			wantSuper: true},
	}
	for _, name := range Names() {
		for _, lv := range levels {
			t.Run(name+"/"+lv.name, func(t *testing.T) {
				t.Parallel()
				opts, admin, s := deploy(t, name)
				acct := addTenant(t, admin, s, "tenant-0", 1)
				database, tenantExpr := opts.Database, "account_id"
				if name == MultiDB {
					database, tenantExpr = opts.TenantDatabase(0), "(SELECT id FROM public.accounts)"
				}
				adminDB := pgtest.Admin(t, database)
				for _, p := range lv.prepare {
					p = fmt.Sprintf(p, quoteIdent(opts.AppUser), quoteIdent(opts.AdminUser), tenantExpr, quoteIdent(database))
					if _, err := adminDB.Exec(p); err != nil {
						t.Fatalf("prepare: %s: %v", p, err)
					}
				}
				t.Cleanup(func() { adminDB.Exec("ALTER ROLE " + quoteIdent(opts.AppUser) + " NOSUPERUSER") })

				tempErr, insertErr := attackCounts(t, pgtest.Open(t, opts.AppUser, "", database), opts.AppUser, name, int64(acct.ID))
				switch {
				case lv.tempRefused && !IsPgError(tempErr, "42501"):
					t.Errorf("CREATE TEMP TABLE as the app role: err = %v, want permission denied (42501)", tempErr)
				case !lv.tempRefused && tempErr != nil:
					t.Fatalf("CREATE TEMP TABLE as the app role: %v, want it allowed at this level", tempErr)
				case !lv.tempRefused && lv.insertFailed != (insertErr != nil):
					t.Errorf("insert into subtasks: err = %v, want failed = %v", insertErr, lv.insertFailed)
				}
				var super bool
				if err := adminDB.QueryRow(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, opts.AppUser).Scan(&super); err != nil {
					t.Fatal(err)
				}
				if super != lv.wantSuper {
					t.Errorf("app role is superuser after the attack = %v, want %v", super, lv.wantSuper)
				}
			})
		}
	}
}

// attackCounts runs the attack as the app role on db: in one tenant
// transaction, the temporary objects, then an insert into subtasks.
func attackCounts(t *testing.T, db *sql.DB, appRole, strategyName string, tenant int64) (tempErr, insertErr error) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT set_config('app.tenant_id', $1, true)`, strconv.FormatInt(tenant, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`CREATE TEMP TABLE subtask_counts (account_id bigint PRIMARY KEY, subtasks bigint)`); err != nil {
		return err, nil
	}
	for _, stmt := range []string{
		`CREATE FUNCTION pg_temp.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN EXECUTE 'ALTER ROLE ` + quoteIdent(appRole) + ` SUPERUSER'; RETURN NULL; END $$`,
		`CREATE TRIGGER escalate AFTER INSERT ON pg_temp.subtask_counts FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.escalate()`,
	} {
		if _, err := tx.Exec(stmt); err != nil {
			t.Fatalf("as the app role: %s: %v", stmt, err)
		}
	}
	insert := `INSERT INTO subtasks (task_id, name) SELECT id, 'innocent' FROM tasks LIMIT 1`
	if strategyName == SingleSchema {
		insert = `INSERT INTO subtasks (account_id, task_id, name) SELECT account_id, id, 'innocent' FROM tasks LIMIT 1`
	}
	if _, err := tx.Exec(insert); err != nil {
		return nil, err
	}
	return nil, tx.Commit()
}
