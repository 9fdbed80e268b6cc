package strategytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// Run drives the strategy h opens through everything package strategy
// promises of every strategy. Each behaviour is a subtest on deployments
// of its own, run in parallel.
func Run(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Harness)
	}{
		{"SetupIsIdempotent", testSetupIsIdempotent},
		{"SetupAdoptsOnlyItsOwnDatabases", testSetupAdoptsOnlyItsOwnDatabases},
		{"MigrationFailsMidFleet", testMigrationFailsMidFleet},
		{"TenantsAreKeptApart", testTenantsAreKeptApart},
		{"NoTenantIsAnError", testNoTenantIsAnError},
		{"HostileSlugsAreNotFound", testHostileSlugsAreNotFound},
		{"PagesCoverEveryRowOnce", testPagesCoverEveryRowOnce},
		{"ReportOpenSubtasks", testReportOpenSubtasks},
		{"CountsFollowWrites", testCountsFollowWrites},
		{"AppCannotWriteCounts", testAppCannotWriteCounts},
		{"CountTriggersCannotMakeTheAppSuperuser", testCountTriggersCannotMakeTheAppSuperuser},
		{"LoadTenant", testLoadTenant},
		{"FlushMakesAsyncCommitsDurable", testFlushMakesAsyncCommitsDurable},
		{"LoadTenantLeavesTheSequencesPastItsIDs", testLoadTenantLeavesTheSequencesPastItsIDs},
		{"UnreachableServerIsUnavailable", testUnreachableServerIsUnavailable},
		{"NoLeakedRowsUnderConcurrentLoad", testNoLeakedRowsUnderConcurrentLoad},
		{"PostgresRestartUnderLoad", testPostgresRestartUnderLoad},
		{"PoolStatsFollowTheConnections", testPoolStatsFollowTheConnections},
		{"TenantLifecycle", testTenantLifecycle},
		{"UserByEmailStaysInTheTenant", testUserByEmailStaysInTheTenant},
		{"OperatorsBelongToNoTenant", testOperatorsBelongToNoTenant},
		{"RevokedSessionsAreShared", testRevokedSessionsAreShared},
		{"WritesInOwnTenant", testWritesInOwnTenant},
		{"WritesNeverReachAnotherTenant", testWritesNeverReachAnotherTenant},
		{"WritesRefuseBadInput", testWritesRefuseBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, h)
		})
	}
}

// testSetupIsIdempotent: a second Setup creates nothing, applies nothing,
// and leaves the rows alone.
func testSetupIsIdempotent(t *testing.T, h Harness) {
	opts, admin, s := Deploy(t, h)
	a := AddTenant(t, admin, s, "tenant-0", 2)
	rep, err := admin.Setup(context.Background(), nil)
	if err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	latest := LatestVersion(t, h.Migrations)
	for _, d := range rep.Databases {
		latest := latest
		if h.SharedMigrations != nil && d.Database == opts.Database {
			latest = LatestVersion(t, h.SharedMigrations)
		}
		if d.Created || len(d.Applied) != 0 || d.To != latest {
			t.Errorf("second Setup: %s created %v, applied %v, at version %d; want nothing created or applied, at %d", d.Database, d.Created, d.Applied, d.To, latest)
		}
	}
	if len(rep.Databases) == 0 {
		t.Error("second Setup reported no database")
	}
	n := Int64s(t, h.TenantDB(t, opts, a.Slug), `SELECT count(*) FROM subtasks`)
	if n[0] != 2 {
		t.Errorf("subtasks after a second Setup = %d, want 2", n[0])
	}
}

// testSetupAdoptsOnlyItsOwnDatabases: a database created beforehand by
// another role may hold that role's schemas and objects (a schema named
// after the app role comes first on its default search_path), and its
// owner can change it at will; Setup refuses it rather than migrate into
// it.
func testSetupAdoptsOnlyItsOwnDatabases(t *testing.T, h Harness) {
	for i := range len(h.Databases(Options(t, h.Name))) {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			opts := Options(t, h.Name)
			database := h.Databases(opts)[i]
			squatter := opts.Database + "_squatter"
			MustExec(t, pgtest.Admin(t, "postgres"),
				"CREATE ROLE "+pg.QuoteIdent(squatter)+" LOGIN CREATEDB",
				"CREATE DATABASE "+pg.QuoteIdent(database)+" OWNER "+pg.QuoteIdent(squatter))
			_, err := OpenAdmin(t, h, opts).Setup(context.Background(), nil)
			if !errors.Is(err, strategy.ErrUnsafeDeployment) || !strings.Contains(err.Error(), squatter) {
				t.Errorf("Setup with %s created by %s beforehand: err = %v, want ErrUnsafeDeployment naming the owner", database, squatter, err)
			}
			tables := Int64s(t, pgtest.Admin(t, database), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`)
			if tables[0] != 0 {
				t.Errorf("Setup migrated into %s, which it did not create: %d tables", database, tables[0])
			}
		})
	}
}

// testTenantsAreKeptApart: each tenant's list holds its own rows and no
// other's, and slugs that name no tenant are not found.
func testTenantsAreKeptApart(t *testing.T, h Harness) {
	_, admin, s := Deploy(t, h)
	a := AddTenant(t, admin, s, "tenant-0", 3)
	b := AddTenant(t, admin, s, "tenant-1", 5)
	for _, tc := range []struct {
		tenant models.Account
		want   int
	}{{a, 3}, {b, 5}} {
		page, err := s.ListSubtasks(TenantCtx(tc.tenant), 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != int64(tc.want) || len(page.Rows) != tc.want {
			t.Errorf("%s: total %d, %d rows; want %d", tc.tenant.Slug, page.Total, len(page.Rows), tc.want)
		}
		for _, r := range page.Rows {
			if r.AccountSlug != tc.tenant.Slug || !strings.HasPrefix(r.Name, tc.tenant.Slug+" ") {
				t.Errorf("%s's list has row %+v", tc.tenant.Slug, r)
			}
		}
		var names []string
		err = s.Tx(TenantCtx(tc.tenant), func(tx *gorm.DB) error {
			return tx.Model(&models.Subtask{}).Order("name").Pluck("name", &names).Error
		})
		if err != nil || len(names) != tc.want {
			t.Errorf("%s: gorm in Tx found %d subtasks (err %v), want %d", tc.tenant.Slug, len(names), err, tc.want)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, tc.tenant.Slug+" ") {
				t.Errorf("%s: gorm in Tx found another tenant's subtask %q", tc.tenant.Slug, n)
			}
		}
	}
	for _, slug := range []string{"tenant-2", "tenant-3", "tenant-01", "nobody"} {
		if _, err := s.TenantBySlug(context.Background(), slug); !errors.Is(err, strategy.ErrTenantNotFound) {
			t.Errorf("TenantBySlug(%q) err = %v, want ErrTenantNotFound", slug, err)
		}
	}
}

// testNoTenantIsAnError: work that needs a tenant, given a context without
// one, fails with ErrNoTenant instead of reading anything.
func testNoTenantIsAnError(t *testing.T, h Harness) {
	_, admin, s := Deploy(t, h)
	AddTenant(t, admin, s, "tenant-0", 2)
	bare := context.Background()
	if page, err := s.ListSubtasks(bare, 1, 10); !errors.Is(err, strategy.ErrNoTenant) || len(page.Rows) != 0 {
		t.Errorf("ListSubtasks without a tenant: %d rows, err %v; want none and ErrNoTenant", len(page.Rows), err)
	}
	ran := false
	err := s.Tx(bare, func(*gorm.DB) error { ran = true; return nil })
	if !errors.Is(err, strategy.ErrNoTenant) || ran {
		t.Errorf("Tx without a tenant: err %v, ran %v; want ErrNoTenant, not run", err, ran)
	}
	if _, err := s.ListSubtasks(models.NewContextWithTenant(bare, models.Account{Slug: "tenant-0"}), 1, 10); !errors.Is(err, strategy.ErrNoTenant) {
		t.Errorf("ListSubtasks with a tenant that has no id: err %v, want ErrNoTenant", err)
	}
}

// testHostileSlugsAreNotFound: slugs made to break out of a query or to
// look like another tenant are answered "not found", never run as SQL, and
// the tenant is still there afterwards.
func testHostileSlugsAreNotFound(t *testing.T, h Harness) {
	hostile := []string{
		"tenant-1'; DROP TABLE accounts;--", "tenant-1' OR '1'='1", "' OR 1=1 --", `tenant-1"`, "tenant-1;",
		"tenant-01", "tenant--1", "tenant-+1", "TENANT-1", "tenant-1 ", " tenant-1",
		"t\u0435nant-1", "tenant-\uff11", "tenant-1\x00", "tenant-1\n", "", "%", "tenant-%", "tenant-_",
		"tenant-9999999999", "tenant-2", strings.Repeat("a", 10000),
	}
	_, admin, s := Deploy(t, h)
	AddTenant(t, admin, s, "tenant-1", 2)
	ctx := context.Background()
	for _, slug := range hostile {
		if acct, err := s.TenantBySlug(ctx, slug); !errors.Is(err, strategy.ErrTenantNotFound) {
			t.Errorf("TenantBySlug(%q) = %+v, %v; want ErrTenantNotFound", slug, acct, err)
		}
	}
	acct, err := s.TenantBySlug(ctx, "tenant-1")
	if err != nil || acct.Slug != "tenant-1" {
		t.Fatalf("TenantBySlug(tenant-1) after the hostile ones = %+v, %v", acct, err)
	}
	if page, err := s.ListSubtasks(TenantCtx(acct), 1, 10); err != nil || page.Total != 2 {
		t.Errorf("tenant-1's list after the hostile slugs: total %d, err %v; want 2", page.Total, err)
	}
}

// maxPageNumber is the largest page number the handlers accept: past the
// end, it must be a 404 like any other, at any page size.
const maxPageNumber = 999_999_999

// testPagesCoverEveryRowOnce: paging through a tenant gives each of its
// rows once, in name then id order, whether a page is read from the front
// or (past the middle) from the back, with full and partial last pages,
// one row, and none; a page past the end, or below 1, is not found. The
// remembered total picks the end a page is read from; a wrong one must not
// change the rows, only the cost.
func testPagesCoverEveryRowOnce(t *testing.T, h Harness) {
	_, admin, s := Deploy(t, h)
	var tenants []models.Account
	for i, n := range []int{0, 1, 23} { // multidb's test deployments have three tenants
		tenants = append(tenants, AddTenant(t, admin, s, fmt.Sprintf("tenant-%d", i), n))
	}
	remembered := map[string]func(slug string, want int){"as read": func(string, int) {}}
	if h.RememberTotal != nil {
		remembered["none"] = func(slug string, _ int) { h.RememberTotal(s, slug, -1) }
		remembered["0: all from the end"] = func(slug string, _ int) { h.RememberTotal(s, slug, 0) }
		remembered["huge: all from the start"] = func(slug string, _ int) { h.RememberTotal(s, slug, 1<<40) }
		remembered["one too few"] = func(slug string, want int) { h.RememberTotal(s, slug, int64(want-1)) }
	}
	for hint, setHint := range remembered {
		for _, tn := range tenants {
			var want []int64
			err := s.Tx(TenantCtx(tn), func(tx *gorm.DB) error {
				return tx.Model(&models.Subtask{}).Order("name, id").Pluck("id", &want).Error
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, perPage := range []int{1, 3, 5, 10, 20, 23} {
				pages := max(1, (len(want)+perPage-1)/perPage)
				var got []int64
				for p := 1; p <= pages; p++ {
					setHint(tn.Slug, len(want))
					page, err := s.ListSubtasks(TenantCtx(tn), p, perPage)
					if err != nil {
						t.Fatalf("total remembered %s: %s, %d a page: page %d: %v", hint, tn.Slug, perPage, p, err)
					}
					if page.Total != int64(len(want)) || page.Pages != pages {
						t.Errorf("%s, %d a page: page %d says %d rows in %d pages; want %d in %d",
							tn.Slug, perPage, p, page.Total, page.Pages, len(want), pages)
					}
					for _, r := range page.Rows {
						got = append(got, r.ID)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("total remembered %s: %s, %d a page: pages give ids\n%v\nwant\n%v", hint, tn.Slug, perPage, got, want)
				}
				for _, past := range []int{pages + 1, maxPageNumber, 0, -1} {
					setHint(tn.Slug, len(want))
					if _, err := s.ListSubtasks(TenantCtx(tn), past, perPage); !errors.Is(err, strategy.ErrPageNotFound) {
						t.Errorf("total remembered %s: %s, %d a page: page %d: err = %v, want ErrPageNotFound", hint, tn.Slug, perPage, past, err)
					}
				}
			}
		}
	}
}

// testCountsFollowWrites: the totals the list pages show come from
// trigger-kept counts, which must match count(*) after every kind of
// write through the app (as the tenant, under the strategy's isolation)
// and after a TRUNCATE as the admin, which fires no transition-table
// trigger and has one of its own.
func testCountsFollowWrites(t *testing.T, h Harness) {
	opts, admin, s := Deploy(t, h)
	a := AddTenant(t, admin, s, "tenant-0", 5)
	b := AddTenant(t, admin, s, "tenant-1", 3)
	steps := []struct {
		what   string
		tenant models.Account
		write  func(tx *gorm.DB) error
	}{
		{"insert two", a, func(tx *gorm.DB) error {
			var task models.Task
			if err := tx.Take(&task).Error; err != nil {
				return err
			}
			return tx.Create(&[]models.Subtask{{TaskID: task.ID, Name: "new 1"}, {TaskID: task.ID, Name: "new 2"}}).Error
		}},
		{"delete three", a, func(tx *gorm.DB) error {
			return tx.Where("name IN ?", []string{"tenant-0 subtask 0", "tenant-0 subtask 1", "new 1"}).Delete(&models.Subtask{}).Error
		}},
		{"update without moving", b, func(tx *gorm.DB) error {
			return tx.Model(&models.Subtask{}).Where("true").Update("is_complete", true).Error
		}},
		{"delete all", b, func(tx *gorm.DB) error {
			return tx.Where("true").Delete(&models.Subtask{}).Error
		}},
	}
	for _, st := range steps {
		if err := s.Tx(TenantCtx(st.tenant), st.write); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		checkTotals(t, h, opts, s, st.what, a, b)
	}
	if _, err := h.TenantDB(t, opts, a.Slug).Exec("TRUNCATE subtasks"); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, h, opts, s, "truncate", a, b)
}

// checkTotals compares each tenant's list total with count(*) of its rows.
func checkTotals(t *testing.T, h Harness, opts strategy.Options, s strategy.Strategy, after string, tenants ...models.Account) {
	t.Helper()
	for _, tn := range tenants {
		page, err := s.ListSubtasks(TenantCtx(tn), 1, 10)
		if err != nil {
			t.Fatalf("after %s: list %s: %v", after, tn.Slug, err)
		}
		db := h.TenantDB(t, opts, tn.Slug)
		query := "SELECT count(*) FROM subtasks"
		if hasAccountID(t, db) {
			query += fmt.Sprintf(" WHERE account_id = %d", tn.ID)
		}
		n := Int64s(t, db, query)[0]
		if page.Total != n || len(page.Rows) != int(min(n, 10)) {
			t.Errorf("after %s: %s lists total %d with %d rows; count(*) = %d", after, tn.Slug, page.Total, len(page.Rows), n)
		}
	}
}

// hasAccountID reports whether the subtasks db's search_path finds carry
// account_id, i.e. hold more than one tenant's rows.
func hasAccountID(t *testing.T, db *sql.DB) bool {
	t.Helper()
	var has bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_attribute
		WHERE attrelid = 'subtasks'::regclass AND attname = 'account_id' AND NOT attisdropped)`).Scan(&has); err != nil {
		t.Fatal(err)
	}
	return has
}

// testAppCannotWriteCounts: the counts the list pages trust are written by
// the triggers alone; the app role, even in its own tenant's transaction,
// may only read them.
func testAppCannotWriteCounts(t *testing.T, h Harness) {
	_, admin, s := Deploy(t, h)
	a := AddTenant(t, admin, s, "tenant-0", 2)
	for _, stmt := range []string{
		"UPDATE subtask_counts SET subtasks = 0",
		"DELETE FROM subtask_counts",
		fmt.Sprintf("INSERT INTO subtask_counts (account_id, subtasks) VALUES (%d, 99) ON CONFLICT (account_id) DO UPDATE SET subtasks = 99", a.ID),
	} {
		err := s.Tx(TenantCtx(a), func(tx *gorm.DB) error { return tx.Exec(stmt).Error })
		if !pg.IsPgError(err, "42501") { // insufficient_privilege
			t.Errorf("%s as the app role: err = %v, want permission denied", stmt, err)
		}
	}
	if page, err := s.ListSubtasks(TenantCtx(a), 1, 10); err != nil || page.Total != 2 {
		t.Errorf("total after the attempts: %d (err %v), want 2", page.Total, err)
	}
}

// vulnerableCounts is the count trigger as it was before it was hardened,
// kept unsafe on purpose so the attack test can show the attack works on
// it: it names subtask_counts without a schema under a search_path that
// does not list pg_temp, so PostgreSQL looks in the caller's temporary
// schema first. Only the test installs it, on its own throwaway
// deployment.
const vulnerableCounts = `CREATE OR REPLACE FUNCTION public.subtask_counts_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO subtask_counts AS c (account_id, subtasks)
    SELECT 0, count(*) FROM new_rows
    ON CONFLICT (account_id) DO UPDATE SET subtasks = c.subtasks + excluded.subtasks;
    RETURN NULL;
END
$$`

// testCountTriggersCannotMakeTheAppSuperuser reproduces, as the app role,
// the escalation through the count triggers: a temporary table named
// subtask_counts whose trigger runs a temporary function, then one
// ordinary insert into subtasks, so that the SECURITY DEFINER trigger
// writes into the temporary table and the temporary function runs with the
// trigger owner's rights. Each defence is tested on its own: without
// TEMPORARY the attack cannot start; with it granted back, the hardened
// function ignores the temporary table; and a vulnerable function owned by
// the counts role has no rights worth stealing. The last case restores the
// function as it was, owned by the superuser admin, to show the attack is
// real. The attack runs in a session of the database where the triggers
// run (Harness.CountTriggerSite: on Citus, the worker that holds the
// tenant's rows, where the temporary objects must be to be found); the
// grants and functions are changed as the admin on the strategy's own
// database, which passes them on.
func testCountTriggersCannotMakeTheAppSuperuser(t *testing.T, h Harness) {
	levels := []struct {
		name string
		// prepare runs as the admin in the attacked database; %[1]s is the
		// app role, %[2]s the admin role, %[3]s the database.
		prepare      []string
		tempRefused  bool // CREATE TEMP TABLE fails with 42501
		wantSuper    bool
		insertFailed bool // the insert itself fails (the stolen rights were not enough)
	}{
		{name: "as set up", tempRefused: true},
		{name: "TEMPORARY granted back", prepare: []string{"GRANT TEMPORARY ON DATABASE %[3]s TO PUBLIC"}},
		{name: "vulnerable function owned by the counts role",
			prepare:      []string{"GRANT TEMPORARY ON DATABASE %[3]s TO PUBLIC", vulnerableCounts},
			insertFailed: true},
		{name: "vulnerable function owned by the superuser admin (before the fix)",
			prepare:   []string{"GRANT TEMPORARY ON DATABASE %[3]s TO PUBLIC", vulnerableCounts, "ALTER FUNCTION public.subtask_counts_apply() OWNER TO %[2]s"},
			wantSuper: true},
	}
	for _, lv := range levels {
		t.Run(lv.name, func(t *testing.T) {
			t.Parallel()
			opts, admin, s := Deploy(t, h)
			acct := AddTenant(t, admin, s, "tenant-0", 1)
			database := h.TenantDatabase(opts, acct.Slug)
			adminDB := pgtest.Admin(t, database)
			app := pg.QuoteIdent(opts.AppUser)
			for _, p := range lv.prepare {
				if strings.Contains(p, "%[") {
					p = fmt.Sprintf(p, app, pg.QuoteIdent(opts.AdminUser), pg.QuoteIdent(database))
				}
				if _, err := adminDB.Exec(p); err != nil {
					t.Fatalf("prepare: %s: %v", p, err)
				}
			}
			nosuper := "ALTER ROLE " + app + " NOSUPERUSER"
			t.Cleanup(func() { adminDB.Exec(nosuper) })

			var begin []string
			if h.TenantTx != nil {
				begin = h.TenantTx(opts, acct)
			}
			attacked := pgtest.Open(t, opts.AppUser, "", database)
			supers := []*sql.DB{adminDB} // where the app role may have been made a superuser
			if h.CountTriggerSite != nil {
				site := h.CountTriggerSite(t, opts, acct)
				attacked = site.Open(t, opts.AppUser)
				siteAdmin := site.Open(t, "")
				supers = append(supers, siteAdmin)
				begin = append(begin, site.Begin...)
				t.Cleanup(func() { inTx(siteAdmin, append(site.Begin, nosuper)) })
			}
			var account int64 // 0: the tenant's tables have no account_id
			if hasAccountID(t, h.TenantDB(t, opts, acct.Slug)) {
				account = int64(acct.ID)
			}
			tempErr, insertErr := attackCounts(t, attacked, opts.AppUser, account, begin)
			switch {
			case lv.tempRefused && !pg.IsPgError(tempErr, "42501"):
				t.Errorf("CREATE TEMP TABLE as the app role: err = %v, want permission denied (42501)", tempErr)
			case !lv.tempRefused && tempErr != nil:
				t.Fatalf("CREATE TEMP TABLE as the app role: %v, want it allowed at this level", tempErr)
			case !lv.tempRefused && lv.insertFailed != (insertErr != nil):
				t.Errorf("insert into subtasks: err = %v, want failed = %v", insertErr, lv.insertFailed)
			}
			super := false
			for _, db := range supers {
				var s bool
				if err := db.QueryRow(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, opts.AppUser).Scan(&s); err != nil {
					t.Fatal(err)
				}
				super = super || s
			}
			if super != lv.wantSuper {
				t.Errorf("app role is superuser after the attack = %v, want %v", super, lv.wantSuper)
			}
		})
	}
}

// inTx runs stmts in one transaction on db, for clean-ups: errors are
// ignored.
func inTx(db *sql.DB, stmts []string) {
	tx, err := db.Begin()
	if err != nil {
		return
	}
	defer tx.Rollback() //nolint:errcheck // committed below when it worked
	for _, s := range stmts {
		if _, err := tx.Exec(s); err != nil {
			return
		}
	}
	tx.Commit() //nolint:errcheck // a clean-up
}

// attackCounts runs the attack as the app role on db: in one tenant
// transaction, the temporary objects, then an insert into subtasks of
// tenant account (0: the tables have no account_id). The insert is
// INSERT ... VALUES, as the app's own: Citus refuses INSERT ... SELECT
// under row-level security (it runs it as COPY into the shards), and
// a sub-select in VALUES, and the trigger would not be reached.
func attackCounts(t *testing.T, db *sql.DB, appRole string, account int64, begin []string) (tempErr, insertErr error) {
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
	for _, stmt := range begin {
		if _, err := tx.Exec(stmt); err != nil {
			t.Fatalf("take on the tenant: %s: %v", stmt, err)
		}
	}
	if _, err := tx.Exec(`CREATE TEMP TABLE subtask_counts (account_id bigint PRIMARY KEY, subtasks bigint)`); err != nil {
		return err, nil
	}
	for _, stmt := range []string{
		`CREATE FUNCTION pg_temp.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN EXECUTE 'ALTER ROLE ` + pg.QuoteIdent(appRole) + ` SUPERUSER'; RETURN NULL; END $$`,
		`CREATE TRIGGER escalate AFTER INSERT ON pg_temp.subtask_counts FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.escalate()`,
	} {
		if _, err := tx.Exec(stmt); err != nil {
			t.Fatalf("as the app role: %s: %v", stmt, err)
		}
	}
	var task int64
	find, insert, args := `SELECT id FROM tasks LIMIT 1`, `INSERT INTO subtasks (task_id, name) VALUES ($1, 'innocent')`, []any{}
	if account != 0 {
		find = `SELECT id FROM tasks WHERE account_id = $1 LIMIT 1`
		insert = `INSERT INTO subtasks (account_id, task_id, name) VALUES ($2, $1, 'innocent')`
		args = append(args, account)
	}
	if err := tx.QueryRow(find, args...).Scan(&task); err != nil {
		t.Fatalf("as the app role: %s: %v", find, err)
	}
	if _, err := tx.Exec(insert, append([]any{task}, args...)...); err != nil {
		return nil, err
	}
	return nil, tx.Commit()
}

// testUnreachableServerIsUnavailable: with no PostgreSQL at the address,
// opening the server side fails with ErrUnavailable (503 material), not a
// refusal or an internal error.
func testUnreachableServerIsUnavailable(t *testing.T, h Harness) {
	opts := Options(t, h.Name)
	opts.Host, opts.Port = "127.0.0.1", pgtest.FreePort(t)
	s, err := h.Open(context.Background(), opts)
	if err == nil {
		s.Close()
		t.Fatal("Open with nothing listening: no error")
	}
	if !errors.Is(err, strategy.ErrUnavailable) {
		t.Errorf("Open with nothing listening: err = %v, want ErrUnavailable", err)
	}
}
