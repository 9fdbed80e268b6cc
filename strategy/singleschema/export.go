package singleschema

import (
	"context"
	"fmt"
	"io"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/internal/pg"
)

var _ strategy.TenantExporter = (*Admin)(nil)

// ExportTenant reads the tenant's rows from the shared tables, where
// account_id is its own (tasks and subtasks carry it too). As the
// superuser admin: row-level security would hide every row from any other
// role, and an export missing rows must not look complete.
func (a *Admin) ExportTenant(ctx context.Context, slug string, table func(name string) (io.Writer, error)) (models.Account, error) {
	pool, _, err := a.conn()
	if err != nil {
		return models.Account{}, err
	}
	if err := audit.AdminRole(ctx, pool, strategy.SingleSchema, audit.SingleSchemaAdminWhy); err != nil {
		return models.Account{}, err
	}
	acct, err := pg.ExportTenant(ctx, pool, pg.ExportLayout{Shared: true}, slug, table)
	if err != nil {
		return models.Account{}, fmt.Errorf("tenant %s: %w", slug, err)
	}
	return acct, nil
}
