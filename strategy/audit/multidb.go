package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"tenancy/strategy"
	"tenancy/strategy/internal/operators"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/multidb/directory"
	mdmigrations "tenancy/strategy/multidb/migrations"
)

// CheckMultiDB inspects the multidb deployment described by opts as the
// admin role (PGUSER): the app role's attributes, and in every tenant
// database (several at a time) its migrations, its kept counts, and what
// the app role may reach there (see auditTenantDatabase). An error means
// the check could not run; what is wrong is reported as findings.
func CheckMultiDB(ctx context.Context, opts strategy.Options) (Report, error) {
	if err := opts.Validate(); err != nil {
		return Report{}, fmt.Errorf("invalid options: %w", err)
	}
	ctx, cancel := pg.WithTimeout(ctx)
	defer cancel()
	rep := Report{Strategy: strategy.MultiDB}
	var dbs, roles map[string]bool
	err := pg.WithMaintenance(ctx, opts, func(m *sql.DB) error {
		var err error
		if dbs, roles, err = existing(ctx, m, []string{opts.Database}, []string{opts.AppUser}); err != nil || !roles[opts.AppUser] {
			return err
		}
		f, err := readRoleFacts(ctx, m, opts.AppUser)
		if err != nil {
			return fmt.Errorf("read role %q: %w", opts.AppUser, err)
		}
		rep.add(roleAttributeFindings(f, false)...)
		rep.checked("role %s (app): not a superuser, no BYPASSRLS, CREATEROLE or REPLICATION, no membership of a role with them or of a predefined role that reaches all data, files or programs", opts.AppUser)
		return nil
	})
	if err != nil {
		return rep, err
	}
	appExists := roles[opts.AppUser]
	if !appExists {
		rep.add(roleMissing(opts.AppUser))
	}
	if !dbs[opts.Database] {
		rep.add(databaseMissing(opts.Database))
		return rep, nil
	}
	// The base database: its own migrations (the directory) and what the
	// app role may do there; then the tenants the directory lists.
	if err := checkTenantDatabase(ctx, opts, opts.Database, true, appExists, &rep); err != nil {
		return rep, fmt.Errorf("%s: %w", opts.Database, err)
	}
	var entries []directory.Entry
	err = func() error {
		pool, err := pg.OpenPool(opts.AdminDSN(opts.Database), 1, 1)
		if err != nil {
			return err
		}
		defer pool.Close()
		entries, err = directory.List(ctx, pool)
		return err
	}()
	if err != nil {
		if pg.IsPgError(err, "42P01") {
			return rep, nil // the pending migration is the finding
		}
		return rep, err
	}

	// Each tenant database on its own server: its migrations, and what
	// the app role may reach in it. A few at a time, like setup.
	type result struct {
		rep Report
		err error
	}
	results := make([]result, len(entries))
	pg.ForEachIndex(len(entries), checkWorkers, func(i int) {
		results[i].err = checkListedDatabase(ctx, opts, entries[i], appExists, &results[i].rep)
	})
	var errs []error
	for i, r := range results {
		rep.add(r.rep.Findings...)
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", entries[i].Key(), r.err))
		}
	}
	if len(errs) == 0 {
		rep.checked("%d tenant databases in the directory of %s: present, the admin's, migrated, counts kept; %s holds exactly the grants it needs in each, owns nothing, creates nothing (TEMPORARY included), calls no SECURITY DEFINER function, search_path public; only the schema public, every object in it the admin's or the counts owner's",
			len(entries), opts.Database, opts.AppUser)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("could not check %d of %d tenant databases: %w", len(errs), len(entries), errors.Join(errs...))
	}
	return rep, nil
}

// checkListedDatabase checks the database of one directory entry on its
// server: a missing one is a finding.
func checkListedDatabase(ctx context.Context, opts strategy.Options, e directory.Entry, appExists bool, rep *Report) error {
	o := e.Server(opts)
	if e.Host != "" {
		// The app role is the deployment's on its own server; elsewhere it
		// is another role of the same name, checked there too.
		var exists bool
		err := pg.WithMaintenance(ctx, o, func(m *sql.DB) error {
			dbs, roles, err := existing(ctx, m, []string{e.Database}, []string{o.AppUser})
			if err != nil {
				return err
			}
			if !dbs[e.Database] {
				rep.add(databaseMissing(e.Key()))
			}
			exists = dbs[e.Database]
			appExists = roles[o.AppUser]
			if !appExists {
				rep.add(roleMissing(o.AppUser + "@" + e.Address()))
				return nil
			}
			f, err := readRoleFacts(ctx, m, o.AppUser)
			if err != nil {
				return fmt.Errorf("read role %q: %w", o.AppUser, err)
			}
			rep.add(roleAttributeFindings(f, false)...)
			return nil
		})
		if err != nil || !exists {
			return err
		}
	} else {
		var exists bool
		err := pg.WithMaintenance(ctx, o, func(m *sql.DB) error {
			dbs, _, err := existing(ctx, m, []string{e.Database}, nil)
			exists = dbs[e.Database]
			return err
		})
		if err != nil {
			return err
		}
		if !exists {
			rep.add(databaseMissing(e.Database))
			return nil
		}
	}
	return checkTenantDatabase(ctx, o, e.Database, false, appExists, rep)
}

// MultiDBTenantDatabase is what `tenancy tenant create` checks of a new
// tenant database, as the admin, before it lists the tenant: everything
// CheckMultiDB checks in each tenant database. o points at the database's
// server.
func MultiDBTenantDatabase(ctx context.Context, o strategy.Options, database string) (Report, error) {
	rep := Report{Strategy: strategy.MultiDB}
	err := checkTenantDatabase(ctx, o, database, false, true, &rep)
	return rep, err
}

// checkTenantDatabase checks one multidb database; base is the PGDATABASE
// database, which holds no tables.
func checkTenantDatabase(ctx context.Context, opts strategy.Options, database string, base, appExists bool, rep *Report) error {
	pool, err := pg.OpenPool(opts.AdminDSN(database), 1, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := checkDatabaseOwner(ctx, pool, database, rep); err != nil {
		return err
	}
	if base {
		if appExists {
			fs, err := auditBaseDatabase(ctx, pool, database, opts.AppUser)
			if err != nil {
				return err
			}
			rep.add(fs...)
		}
		return checkMigrations(ctx, pool, database, directory.Migrations(), rep)
	}
	if appExists {
		fs, err := auditTenantDatabase(ctx, pool, database, opts.AppUser, opts)
		if err != nil {
			return err
		}
		rep.add(fs...)
	}
	if err := checkMigrations(ctx, pool, database, mdmigrations.FS(), rep); err != nil {
		return err
	}
	return checkCounts(ctx, pool, database, multiDBCounts(), rep)
}

// auditTenantDatabase is what the app role may reach in one multidb
// tenant database beyond what the server needs: auditDatabase's findings
// and the grants, which must be exactly the server's (a missing one makes
// the tenant fail, an extra one reaches past it). role empty means the
// connected role.
func auditTenantDatabase(ctx context.Context, q Querier, database, role string, opts strategy.Options) ([]Finding, error) {
	fs, err := auditDatabase(ctx, q, auditTarget{database: database, role: role, admin: opts.AdminUser, counter: opts.CountsOwner(), schemas: []string{"public"}})
	if err != nil {
		return nil, err
	}
	privs, err := tablePrivileges(ctx, q, role, "public")
	if err != nil {
		return nil, err
	}
	if role == "" {
		role = opts.AppUser
	}
	return append(fs, grantFindings(database, role, false, tableGrants(), privs, nil)...), nil
}

// auditBaseDatabase checks the multidb base database, where the server
// reads the tenant directory: the app role may not create or own
// anything there.
func auditBaseDatabase(ctx context.Context, q Querier, database, role string) ([]Finding, error) {
	var temp, create, owns bool
	err := q.QueryRowContext(ctx, `
		SELECT has_database_privilege(r.oid, current_database(), 'TEMPORARY'),
		       has_database_privilege(r.oid, current_database(), 'CREATE')
		         OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
		                      AND has_schema_privilege(r.oid, n.oid, 'CREATE')),
		       pg_has_role(r.oid, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER')
		FROM pg_roles r WHERE r.rolname = $1 AND NOT r.rolsuper`, role).Scan(&temp, &create, &owns)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // a superuser may do all of it; roleAttributeFindings says so
	}
	if err != nil {
		return nil, fmt.Errorf("read the privileges of role %q: %w", role, pg.Classify(err))
	}
	var out []Finding
	// Writing the directory would let whoever holds the app role's
	// password point a tenant at another database. A grant on one column
	// (UPDATE (database)) is enough for that, and has_table_privilege
	// sees only grants on the whole table: INSERT, UPDATE and REFERENCES
	// are asked of any column.
	var writes sql.NullBool
	err = q.QueryRowContext(ctx, `
		SELECT bool_or(has_any_column_privilege(r.oid, t.oid, 'INSERT, UPDATE, REFERENCES')
		            OR has_table_privilege(r.oid, t.oid, 'DELETE, TRUNCATE, TRIGGER'))
		FROM pg_roles r, (SELECT to_regclass(name) AS oid FROM unnest(ARRAY[$2, $3]) name) t
		WHERE r.rolname = $1 AND t.oid IS NOT NULL`, role, directory.Table, "public."+operators.OperatorsTable).Scan(&writes)
	if err != nil {
		return nil, fmt.Errorf("read the privileges of role %q on the tenant directory: %w", role, pg.Classify(err))
	}
	if writes.Bool {
		out = append(out, Finding{Kind: FindingExtraGrant, Database: database, Subject: "table " + directory.Table,
			Problem: fmt.Sprintf("role %q may write the tenant directory or the operators, and so send a tenant's requests to another database or make itself an operator of every tenant", role),
			Fix:     fmt.Sprintf("run REVOKE ALL ON %[1]s, public.operators FROM PUBLIC, %[2]s; GRANT SELECT ON %[1]s, public.operators TO %[2]s (`tenancy migrate` does)", directory.Table, pg.QuoteIdent(role))})
	}
	if !temp && !create && !owns {
		return out, nil
	}
	return append(out, Finding{Kind: FindingCanCreate, Database: database, Subject: fmt.Sprintf("role %q", role),
		Problem: "it may create (temporary) objects in the base database, or owns it, which holds no tenant data and needs none",
		Fix:     fmt.Sprintf("run REVOKE ALL ON DATABASE %[1]s FROM PUBLIC; GRANT CONNECT ON DATABASE %[1]s TO %[2]s (`tenancy setup` does)", pg.QuoteIdent(database), pg.QuoteIdent(role))}), nil
}

// checkWorkers bounds how many tenant databases are checked at once.
const checkWorkers = 4

// MultiDBTenant is what a multidb server checks of a tenant database, from
// its own session, before it serves the tenant for the first time: the
// grants it needs and no more, nothing owned or creatable, no TEMPORARY,
// no SECURITY DEFINER function within reach, no foreign schema. The error
// wraps ErrUnsafeDeployment and lists the findings.
func MultiDBTenant(ctx context.Context, db *sql.DB, database string, opts strategy.Options) error {
	fs, err := auditTenantDatabase(ctx, db, database, "", opts)
	if err != nil {
		return err
	}
	return unsafeDeployment(fs)
}
