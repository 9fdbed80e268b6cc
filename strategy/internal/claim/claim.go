// Package claim fills in, or checks, the tenant of rows a gorm statement
// writes: rows without a tenant get the context's, rows that name another
// tenant are refused with strategy.ErrCrossTenantWrite. Both the
// singleschema tenant scope and multidb's account_id columns use it.
package claim

import (
	"context"
	"fmt"
	"reflect"
	"tenancy/strategy"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// Rows sets the tenant on rows that have none, and refuses rows that
// name another tenant: structs, slices of structs, and maps.
func Rows(ctx context.Context, stmt *gorm.Statement, field *schema.Field, tenantID int64) {
	switch dest := stmt.Dest.(type) {
	case map[string]any:
		Map(stmt, dest, field, tenantID, true)
	case []map[string]any:
		for _, m := range dest {
			Map(stmt, m, field, tenantID, true)
		}
	case *[]map[string]any:
		for _, m := range *dest {
			Map(stmt, m, field, tenantID, true)
		}
	default:
		Value(ctx, stmt, stmt.ReflectValue, field, tenantID)
	}
}

// Value claims one struct (or slice of structs) for the tenant, as Rows
// does for a statement's destination.
func Value(ctx context.Context, stmt *gorm.Statement, rv reflect.Value, field *schema.Field, tenantID int64) {
	rv = reflect.Indirect(rv)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			Value(ctx, stmt, rv.Index(i), field, tenantID)
		}
	case reflect.Struct:
		if rv.Type() != field.Schema.ModelType || !rv.CanAddr() {
			return
		}
		v, zero := field.ValueOf(ctx, rv)
		if zero {
			if err := field.Set(ctx, rv, tenantID); err != nil {
				stmt.AddError(fmt.Errorf("set %s.%s: %w", TableName(stmt), field.DBName, err))
			}
			return
		}
		if id, ok := asInt64(v); !ok || id != tenantID {
			stmt.AddError(fmt.Errorf("%w: write to %s with %s=%v in tenant %d", strategy.ErrCrossTenantWrite, TableName(stmt), field.DBName, v, tenantID))
		}
	}
}

// Map checks the tenant column of a map of column values; fill adds it
// when missing (creates), otherwise a missing column is left alone (updates
// of other columns).
func Map(stmt *gorm.Statement, m map[string]any, field *schema.Field, tenantID int64, fill bool) {
	found := false
	for _, key := range []string{field.DBName, field.Name} {
		v, ok := m[key]
		if !ok {
			continue
		}
		found = true
		if id, ok := asInt64(v); !ok || id != tenantID {
			stmt.AddError(fmt.Errorf("%w: write to %s with %s=%v in tenant %d", strategy.ErrCrossTenantWrite, TableName(stmt), field.DBName, v, tenantID))
		}
	}
	if !found && fill {
		m[field.DBName] = tenantID
	}
}

// asInt64 reads an integer of any integer type; anything else (an SQL
// expression, say) cannot be checked and is refused by the callers.
func asInt64(v any) (int64, bool) {
	rv := reflect.Indirect(reflect.ValueOf(v))
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(rv.Uint()), true
	}
	return 0, false
}

// StatementContext returns the statement's context. gorm builds the ON
// clause of a Joins relation on a statement without one; the query's own
// statement has it then.
func StatementContext(stmt *gorm.Statement) context.Context {
	if stmt.Context != nil {
		return stmt.Context
	}
	if stmt.DB != nil && stmt.DB.Statement != nil && stmt.DB.Statement.Context != nil {
		return stmt.DB.Statement.Context
	}
	return context.Background()
}

// TableName names the statement's table for errors.
func TableName(stmt *gorm.Statement) string {
	if stmt.Table != "" {
		return stmt.Table
	}
	if stmt.Schema != nil {
		return stmt.Schema.Table
	}
	return "?"
}
