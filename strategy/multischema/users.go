package multischema

import (
	"context"
	"database/sql"
	"fmt"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

func (s *Server) UserByEmail(ctx context.Context, email string) (models.User, error) {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return models.User{}, strategy.ErrNoTenant
	}
	var u models.User
	err := s.tx(ctx, &sql.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		u, err = pg.TakeUserByEmail(tx, t, email)
		return err
	})
	if err != nil {
		return models.User{}, fmt.Errorf("find user by email in tenant %s: %w", t.Slug, err)
	}
	return u, nil
}
