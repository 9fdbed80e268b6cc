package audit

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"tenancy/strategy/internal/pg"

	"github.com/pressly/goose/v3"
)

// checkDatabaseOwner adds a finding when database is not the admin's:
// setup adopts only databases it created, and the owner of a database can
// change anything in it.
func checkDatabaseOwner(ctx context.Context, db Querier, database string, rep *Report) error {
	var owner string
	var mine bool
	err := db.QueryRowContext(ctx, `SELECT pg_get_userbyid(datdba), datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)
		FROM pg_database WHERE datname = current_database()`).Scan(&owner, &mine)
	if err != nil {
		return fmt.Errorf("read the owner of %s: %w", database, pg.Classify(err))
	}
	if !mine {
		rep.add(Finding{Kind: FindingForeignObject, Database: database, Subject: fmt.Sprintf("database %q", database),
			Problem: fmt.Sprintf("it is owned by %q, not by the admin role: its owner can change anything in it, and setup did not create it", owner),
			Fix:     fmt.Sprintf("run ALTER DATABASE %s OWNER TO <PGUSER> after checking what it holds, or recreate it with `tenancy setup`", pg.QuoteIdent(database))})
	}
	return nil
}

// countsCheck is how one strategy's kept counts are compared with its
// subtasks, and repaired.
type countsCheck struct {
	// drifted lists (up to five of) the accounts whose kept subtask count
	// differs from their subtasks, and how many there are.
	drifted string
	// recount is the repair a drifted-counts finding suggests.
	recount string
}

func singleSchemaCounts() countsCheck {
	return countsCheck{
		drifted: `
		SELECT count(*), coalesce(string_agg(slug, ', ' ORDER BY id) FILTER (WHERE n <= 5), '')
		FROM (SELECT a.id, a.slug, row_number() OVER (ORDER BY a.id) AS n
		      FROM accounts a
		      LEFT JOIN subtask_counts c ON c.account_id = a.id
		      LEFT JOIN (SELECT account_id, count(*) AS subtasks FROM subtasks GROUP BY account_id) s ON s.account_id = a.id
		      WHERE coalesce(c.subtasks, 0) <> coalesce(s.subtasks, 0)) d`,
		recount: "BEGIN; LOCK TABLE subtasks IN SHARE MODE; DELETE FROM subtask_counts; " +
			"INSERT INTO subtask_counts SELECT account_id, count(*) FROM subtasks GROUP BY account_id; COMMIT;",
	}
}

func multiDBCounts() countsCheck {
	return countsCheck{
		drifted: `
		SELECT count(*), coalesce(string_agg(a.slug, ', '), '')
		FROM accounts a LEFT JOIN subtask_counts c ON c.account_id = a.id
		WHERE coalesce(c.subtasks, 0) <> (SELECT count(*) FROM subtasks)`,
		recount: "BEGIN; LOCK TABLE subtasks IN SHARE MODE; DELETE FROM subtask_counts; " +
			"INSERT INTO subtask_counts SELECT id, (SELECT count(*) FROM subtasks) FROM accounts; COMMIT;",
	}
}

// checkCounts compares the trigger-kept subtask counts with the subtasks,
// once the migration that adds them has run.
func checkCounts(ctx context.Context, db *sql.DB, database string, counts countsCheck, rep *Report) error {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('public.subtask_counts') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return err
	}
	var n int
	var some string
	if err := db.QueryRowContext(ctx, counts.drifted).Scan(&n, &some); err != nil {
		return fmt.Errorf("compare the subtask counts in %s: %w", database, pg.Classify(err))
	}
	if n > 0 {
		rep.add(Finding{Kind: FindingCountsDrifted, Database: database, Subject: "table subtask_counts",
			Problem: fmt.Sprintf("the kept subtask counts of %d account(s) (%s) differ from their subtasks, so list totals are wrong and the all-tenants view skips or repeats rows", n, some),
			Fix:     "recount them as the admin (psql): " + counts.recount})
		return nil
	}
	rep.checked("%s: subtask counts agree with the subtasks", database)
	return nil
}

// existing returns which of databases and roles exist.
func existing(ctx context.Context, m *sql.DB, databases, roles []string) (map[string]bool, map[string]bool, error) {
	read := func(query string, names []string) (map[string]bool, error) {
		rows, err := m.QueryContext(ctx, query, names)
		if err != nil {
			return nil, pg.Classify(err)
		}
		defer rows.Close()
		found := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return nil, err
			}
			found[n] = true
		}
		return found, rows.Err()
	}
	dbs, err := read(`SELECT datname FROM pg_database WHERE datname = ANY($1)`, databases)
	if err != nil {
		return nil, nil, fmt.Errorf("list databases: %w", err)
	}
	rs, err := read(`SELECT rolname FROM pg_roles WHERE rolname = ANY($1)`, roles)
	if err != nil {
		return nil, nil, fmt.Errorf("list roles: %w", err)
	}
	return dbs, rs, nil
}

func roleMissing(role string) Finding {
	return Finding{Kind: FindingRoleMissing, Subject: fmt.Sprintf("role %q", role),
		Problem: "it does not exist", Fix: "run `tenancy setup`"}
}

func databaseMissing(database string) Finding {
	return Finding{Kind: FindingDatabaseMissing, Subject: fmt.Sprintf("database %q", database),
		Problem: "it does not exist", Fix: "run `tenancy setup`, which creates it and runs its migrations"}
}

// checkMigrations adds a finding when db lacks migrations in fsys.
func checkMigrations(ctx context.Context, db *sql.DB, database string, fsys fs.FS, rep *Report) error {
	return checkMigrationsIn(ctx, db, database, fsys, goose.DefaultTablename, rep)
}

// checkMigrationsIn is checkMigrations with goose's version table at
// versionTable (multischema keeps one in each tenant's schema).
func checkMigrationsIn(ctx context.Context, db *sql.DB, database string, fsys fs.FS, versionTable string, rep *Report) error {
	version, pending, ahead, err := pendingMigrations(ctx, db, fsys, versionTable)
	if err != nil {
		return fmt.Errorf("%s: read migrations: %w", database, pg.Classify(err))
	}
	if ahead > version {
		rep.add(Finding{Kind: FindingMigrationsAhead, Database: database, Subject: "migrations",
			Problem: fmt.Sprintf("it is at version %d, newer than this build's newest migration (%d): a newer build migrated it", ahead, version),
			Fix:     "run the newer build's tenancy (check, serve) against it; this build serves it as long as that build's migrations only added to the schema"})
	}
	if len(pending) > 0 {
		rep.add(Finding{Kind: FindingMigrationsPending, Database: database, Subject: "migrations",
			Problem: fmt.Sprintf("%s not applied (at version %d)", strings.Join(pending, ", "), version),
			Fix:     "run `tenancy migrate`"})
	} else {
		rep.checked("%s: migrations up to date (version %d)", database, version)
	}
	return nil
}

// pendingMigrations returns db's schema version and the files of the
// migrations in fsys not applied to it. Unlike goose's Status it
// does not create goose's version table when that is missing (a check
// writes nothing): a database without one has every migration pending.
func pendingMigrations(ctx context.Context, db *sql.DB, fsys fs.FS, versionTable string) (version int64, pending []string, ahead int64, err error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true), goose.WithTableName(versionTable))
	if err != nil {
		return 0, nil, 0, fmt.Errorf("load migrations: %w", err)
	}
	var tracked bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&tracked); err != nil {
		return 0, nil, 0, err
	}
	if !tracked {
		for _, s := range p.ListSources() {
			pending = append(pending, path.Base(s.Path))
		}
		return 0, pending, 0, nil
	}
	status, err := p.Status(ctx)
	if err != nil {
		return 0, nil, 0, err
	}
	for _, s := range status {
		switch {
		case s.State == goose.StatePending:
			pending = append(pending, path.Base(s.Source.Path))
		case s.Source.Version > version:
			version = s.Source.Version
		}
	}
	// The newest version applied, known to this build or not.
	if ahead, err = p.GetDBVersion(ctx); err != nil {
		return 0, nil, 0, err
	}
	return version, pending, ahead, nil
}
