package singleschema

import (
	"context"
	"time"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/operators"
)

// Operators and sign-outs belong to no tenant: they are kept in the shared database's public schema, outside row-level security, which no tenant's rows are,
// through the same code as in every strategy (package operators).

func (a *Admin) CreateOperator(ctx context.Context, email, passwordHash string) (models.Operator, error) {
	pool, _, err := a.admin.Get()
	if err != nil {
		return models.Operator{}, err
	}
	return operators.Create(ctx, pool, email, passwordHash)
}

func (a *Admin) Operators(ctx context.Context) ([]models.Operator, error) {
	pool, _, err := a.admin.Get()
	if err != nil {
		return nil, err
	}
	return operators.List(ctx, pool)
}

func (a *Admin) DeleteOperator(ctx context.Context, email string) error {
	pool, _, err := a.admin.Get()
	if err != nil {
		return err
	}
	return operators.Delete(ctx, pool, email)
}

func (s *Server) OperatorByEmail(ctx context.Context, email string) (models.Operator, error) {
	return operators.ByEmail(ctx, s.pools[0], email)
}

func (s *Server) RevokeSession(ctx context.Context, id string, expires time.Time) error {
	return operators.Revoke(ctx, s.pools[0], id, expires)
}

func (s *Server) RevokedSessions(ctx context.Context, since time.Time) ([]strategy.RevokedSession, error) {
	return operators.Revoked(ctx, s.pools[0], since)
}
