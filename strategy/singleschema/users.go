package singleschema

import (
	"context"

	"tenancy/models"
	"tenancy/strategy/internal/pg"
)

func (s *Server) UserByEmail(ctx context.Context, email string) (models.User, error) {
	return pg.UserByEmail(ctx, email, s.tx)
}
