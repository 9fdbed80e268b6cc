package multidb

import (
	"context"
	"database/sql"
	"io"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

var _ strategy.TenantExporter = (*Admin)(nil)

// ExportTenant reads the tenant's database, which holds that tenant alone.
func (a *Admin) ExportTenant(ctx context.Context, slug string, table func(name string) (io.Writer, error)) (models.Account, error) {
	var acct models.Account
	err := a.withTenantPool(ctx, slug, func(pool *sql.DB) error {
		var err error
		acct, err = pg.ExportTenant(ctx, pool, pg.ExportLayout{}, slug, table)
		return err
	})
	return acct, err
}
