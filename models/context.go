package models

import "context"

type contextKey int

const (
	tenantKey contextKey = iota + 1
	allTenantsKey
)

// NewContextWithTenant returns a context that carries the tenant whose data
// the work done with it may read and write.
func NewContextWithTenant(ctx context.Context, t Account) context.Context {
	return context.WithValue(ctx, tenantKey, t)
}

// TenantFromContext returns the tenant carried by ctx, if any.
func TenantFromContext(ctx context.Context) (Account, bool) {
	if ctx == nil {
		return Account{}, false
	}
	t, ok := ctx.Value(tenantKey).(Account)
	return t, ok && t.ID != 0
}

// NewContextForAllTenants returns a context that explicitly asks for the data
// of every tenant. It is the only way to run a tenanted query without a
// tenant, and strategies honour it only on their all-tenants connection.
func NewContextForAllTenants(ctx context.Context) context.Context {
	return context.WithValue(ctx, allTenantsKey, true)
}

// IsAllTenants reports whether ctx explicitly asks for every tenant's data.
func IsAllTenants(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	all, _ := ctx.Value(allTenantsKey).(bool)
	return all
}
