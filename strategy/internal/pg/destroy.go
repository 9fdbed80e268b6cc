package pg

import (
	"context"
	"errors"
	"fmt"
	"tenancy/strategy"
)

// destroy drops databases and then roles on the maintenance database,
// skipping those that do not exist, and reports every failure.
func Destroy(ctx context.Context, opts strategy.Options, databases, roles []string) error {
	// Several drops at once: each DROP DATABASE waits for a checkpoint,
	// and drops waiting together share one, so a thousand tenant
	// databases go in a fraction of the time one after another takes
	// (about half a second each). Each drop has its own timeout: all of
	// them together may take minutes.
	m, err := OpenPool(opts.AdminDSN(MaintenanceDatabase), destroyWorkers, destroyWorkers)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.PingContext(ctx); err != nil {
		return Classify(fmt.Errorf("connect to PostgreSQL at %s:%d as %q to drop the databases: %w", opts.Host, opts.Port, opts.AdminUser, err))
	}
	errs := make([]error, len(databases))
	ForEachIndex(len(databases), destroyWorkers, func(i int) {
		drop, cancel := WithTimeout(ctx)
		defer cancel()
		// FORCE: a server or pool that is still connected would otherwise
		// keep the database alive.
		if _, err := m.ExecContext(drop, "DROP DATABASE IF EXISTS "+QuoteIdent(databases[i])+" WITH (FORCE)"); err != nil {
			errs[i] = fmt.Errorf("drop database %s: %w", databases[i], err)
		}
	})
	for _, r := range roles {
		drop, cancel := WithTimeout(ctx)
		if _, err := m.ExecContext(drop, "DROP ROLE IF EXISTS "+QuoteIdent(r)); err != nil {
			errs = append(errs, fmt.Errorf("drop role %s: %w", r, err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

// destroyWorkers is how many databases Destroy drops at once.
const destroyWorkers = 8
