package pg

import (
	"errors"
	"fmt"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
)

// TakeUserByEmail reads tenant t's user with email inside a transaction
// already scoped to t. The account_id condition is on top of the
// strategy's own scope (the gorm scope and row-level security, the
// tenant's schema or database), so that a scope that failed open still
// could not sign a user in on another tenant's address.
func TakeUserByEmail(tx *gorm.DB, t models.Account, email string) (models.User, error) {
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
