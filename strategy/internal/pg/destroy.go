package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"tenancy/strategy"
)

// destroy drops databases and then roles on the maintenance database,
// skipping those that do not exist, and reports every failure.
func Destroy(ctx context.Context, opts strategy.Options, databases, roles []string) error {
	return WithMaintenance(ctx, opts, func(m *sql.DB) error {
		var errs []error
		for _, d := range databases {
			// FORCE: a server or pool that is still connected would
			// otherwise keep the database alive.
			if _, err := m.ExecContext(ctx, "DROP DATABASE IF EXISTS "+QuoteIdent(d)+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop database %s: %w", d, err))
			}
		}
		for _, r := range roles {
			if _, err := m.ExecContext(ctx, "DROP ROLE IF EXISTS "+QuoteIdent(r)); err != nil {
				errs = append(errs, fmt.Errorf("drop role %s: %w", r, err))
			}
		}
		return errors.Join(errs...)
	})
}
