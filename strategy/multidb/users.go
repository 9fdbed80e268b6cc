package multidb

import (
	"context"

	"tenancy/models"
	"tenancy/strategy/internal/pg"
)

func (m *Server) UserByEmail(ctx context.Context, email string) (models.User, error) {
	return pg.UserByEmail(ctx, email, m.tx)
}
