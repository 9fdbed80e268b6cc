package multischema

import (
	"context"
	"fmt"
	"io"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

var _ strategy.TenantExporter = (*Admin)(nil)

// ExportTenant reads the account from public.accounts and the rest from
// the tenant's own schema, named after the account's id as read in the
// same snapshot.
func (a *Admin) ExportTenant(ctx context.Context, slug string, table func(name string) (io.Writer, error)) (models.Account, error) {
	pool, _, err := a.conn()
	if err != nil {
		return models.Account{}, err
	}
	acct, err := pg.ExportTenant(ctx, pool, pg.ExportLayout{Schema: SchemaOf}, slug, table)
	if err != nil {
		return models.Account{}, fmt.Errorf("tenant %s: %w", slug, err)
	}
	return acct, nil
}
