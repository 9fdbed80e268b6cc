package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
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
	names := []string{opts.Database}
	for i := range opts.TenantCount {
		names = append(names, opts.TenantDatabase(i))
	}
	var dbs, roles map[string]bool
	err := pg.WithMaintenance(ctx, opts, func(m *sql.DB) error {
		var err error
		if dbs, roles, err = existing(ctx, m, names, []string{opts.AppUser}); err != nil || !roles[opts.AppUser] {
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
	var present []string
	for _, n := range names {
		if dbs[n] {
			present = append(present, n)
		} else {
			rep.add(databaseMissing(n))
		}
	}

	// Each tenant database on its own: its migrations, and what the app
	// role may reach in it. A few at a time, like setup.
	type result struct {
		rep Report
		err error
	}
	results := make([]result, len(present))
	pg.ForEachIndex(len(present), checkWorkers, func(i int) {
		results[i].err = checkTenantDatabase(ctx, opts, present[i], present[i] == opts.Database, appExists, &results[i].rep)
	})
	var errs []error
	for i, r := range results {
		rep.add(r.rep.Findings...)
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", present[i], r.err))
		}
	}
	if tenants := opts.TenantCount; len(errs) == 0 {
		rep.checked("%d tenant databases (%s to %s): present, the admin's, migrated, counts kept; %s holds exactly the grants it needs in each, owns nothing, creates nothing (TEMPORARY included), calls no SECURITY DEFINER function, search_path public; only the schema public, every object in it the admin's or the counts owner's",
			tenants, opts.TenantDatabase(0), opts.TenantDatabase(tenants-1), opts.AppUser)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("could not check %d of %d databases: %w", len(errs), len(present), errors.Join(errs...))
	}
	return rep, nil
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
		return nil
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

// auditBaseDatabase checks the multidb base database, which the server
// connects to for health checks only: the app role may not create or own
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
	if !temp && !create && !owns {
		return nil, nil
	}
	return []Finding{{Kind: FindingCanCreate, Database: database, Subject: fmt.Sprintf("role %q", role),
		Problem: "it may create (temporary) objects in the base database, or owns it, which holds no tenant data and needs none",
		Fix:     fmt.Sprintf("run REVOKE ALL ON DATABASE %[1]s FROM PUBLIC; GRANT CONNECT ON DATABASE %[1]s TO %[2]s (`tenancy setup` does)", pg.QuoteIdent(database), pg.QuoteIdent(role))}}, nil
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
