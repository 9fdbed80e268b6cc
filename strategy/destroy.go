package strategy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// destroy drops databases and then roles on the maintenance database,
// skipping those that do not exist, and reports every failure.
func destroy(ctx context.Context, opts Options, databases, roles []string) error {
	return withMaintenance(ctx, opts, func(m *sql.DB) error {
		var errs []error
		for _, d := range databases {
			// FORCE: a server or pool that is still connected would
			// otherwise keep the database alive.
			if _, err := m.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(d)+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop database %s: %w", d, err))
			}
		}
		for _, r := range roles {
			if _, err := m.ExecContext(ctx, "DROP ROLE IF EXISTS "+quoteIdent(r)); err != nil {
				errs = append(errs, fmt.Errorf("drop role %s: %w", r, err))
			}
		}
		return errors.Join(errs...)
	})
}

// Destroy drops the database and the app and reader roles.
func (a *singleSchemaAdmin) Destroy(ctx context.Context) error {
	if err := a.Close(); err != nil {
		return err
	}
	return destroy(ctx, a.opts, []string{a.opts.Database}, []string{a.opts.AppUser, a.opts.ReaderUser, a.opts.CountsOwner()})
}

// Destroy drops every tenant database, the template, the base database and
// the app role.
func (a *multiDBAdmin) Destroy(ctx context.Context) error {
	dbs := []string{a.opts.Database, a.templateDatabase()}
	for i := range a.opts.TenantCount {
		dbs = append(dbs, a.opts.TenantDatabase(i))
	}
	return destroy(ctx, a.opts, dbs, []string{a.opts.AppUser, a.opts.CountsOwner()})
}
