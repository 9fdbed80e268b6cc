package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
)

// UserByEmail is every strategy's Strategy.UserByEmail: the user of the
// context's tenant with email, read in a read-only transaction of tx, the
// strategy's own transaction scoped to that tenant.
func UserByEmail(ctx context.Context, email string, tx func(context.Context, *sql.TxOptions, func(*gorm.DB) error) error) (models.User, error) {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return models.User{}, strategy.ErrNoTenant
	}
	var u models.User
	err := tx(ctx, &sql.TxOptions{ReadOnly: true}, func(db *gorm.DB) error {
		var err error
		u, err = takeUserByEmail(db, t, email)
		return err
	})
	if err != nil {
		return models.User{}, fmt.Errorf("find user by email in tenant %s: %w", t.Slug, err)
	}
	return u, nil
}

// takeUserByEmail reads tenant t's user with email inside a transaction
// already scoped to t. The account_id condition is on top of the
// strategy's own scope (the gorm scope and row-level security, the
// tenant's schema or database), so that a scope that failed open still
// could not sign a user in on another tenant's address.
func takeUserByEmail(tx *gorm.DB, t models.Account, email string) (models.User, error) {
	var u models.User
	err := tx.Where("account_id = ? AND email = ?", t.ID, email).Take(&u).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return models.User{}, strategy.ErrUserNotFound
	case err != nil:
		return models.User{}, err
	case u.AccountID != t.ID:
		return models.User{}, fmt.Errorf("read a user of account %d for tenant %s (account %d): the tenant scope failed", u.AccountID, t.Slug, t.ID)
	}
	return u, nil
}
