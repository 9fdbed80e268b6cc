package strategy

import (
	"context"
	"fmt"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"tenancy/models"
)

// tenantScope is the gorm plugin that makes the tenant scope mandatory in
// singleschema. models.TenantID hands it every query, update, delete and
// create on a tenanted model, including relations reached through Joins and
// Preload. It scopes the statement to the tenant on the statement's context,
// lets an explicit all-tenants read through, and turns anything else into
// ErrNoTenantScope before SQL is sent. Raw and Exec carry no model, so they
// are not seen here: row-level security is the backstop for those.
type tenantScope struct{}

var _ models.TenantEnforcer = tenantScope{}

func (tenantScope) Name() string              { return models.TenantEnforcerName }
func (tenantScope) Initialize(*gorm.DB) error { return nil }

// scopedMarker keeps a statement from being scoped twice when gorm adds the
// model's clauses again (e.g. Count followed by Find on one statement).
const scopedMarker = "tenancy:tenant_scoped"

func (tenantScope) EnforceTenant(stmt *gorm.Statement, field *schema.Field, op models.Operation) {
	ctx := statementContext(stmt)
	if models.IsAllTenants(ctx) {
		if op != models.OpQuery {
			stmt.AddError(fmt.Errorf("%w: %s on %s: the all-tenants scope is read-only", ErrNoTenantScope, op, stmt.Table))
		}
		return
	}
	tenant, ok := models.TenantFromContext(ctx)
	if !ok {
		stmt.AddError(fmt.Errorf("%w: %s on %s: run it through Strategy.Tx with a tenant on the context, or ask for all tenants explicitly", ErrNoTenantScope, op, tableName(stmt)))
		return
	}
	if op == models.OpCreate {
		claimRows(ctx, stmt, field, tenant.ID)
		return
	}
	if _, done := stmt.Clauses[scopedMarker]; done {
		return
	}
	stmt.AddClause(clause.Where{Exprs: []clause.Expression{
		clause.Eq{Column: clause.Column{Table: clause.CurrentTable, Name: field.DBName}, Value: tenant.ID},
	}})
	stmt.Clauses[scopedMarker] = clause.Clause{}
}

// claimRows sets the tenant on rows that have none, and refuses rows that
// name another tenant.
func claimRows(ctx context.Context, stmt *gorm.Statement, field *schema.Field, tenantID int64) {
	rv := reflect.Indirect(stmt.ReflectValue)
	claim := func(row reflect.Value) {
		row = reflect.Indirect(row)
		if row.Kind() != reflect.Struct {
			return
		}
		v, zero := field.ValueOf(ctx, row)
		if zero {
			if err := field.Set(ctx, row, tenantID); err != nil {
				stmt.AddError(fmt.Errorf("set %s.%s: %w", stmt.Table, field.DBName, err))
			}
			return
		}
		if id, ok := v.(models.TenantID); !ok || int64(id) != tenantID {
			stmt.AddError(fmt.Errorf("%w: create on %s with %s=%v in tenant %d", ErrCrossTenantWrite, stmt.Table, field.DBName, v, tenantID))
		}
	}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			claim(rv.Index(i))
		}
	case reflect.Struct:
		claim(rv)
	}
}

// statementContext returns the statement's context. gorm builds the ON
// clause of a Joins relation on a statement without one; the query's own
// statement has it then.
func statementContext(stmt *gorm.Statement) context.Context {
	if stmt.Context != nil {
		return stmt.Context
	}
	if stmt.DB != nil && stmt.DB.Statement != nil && stmt.DB.Statement.Context != nil {
		return stmt.DB.Statement.Context
	}
	return context.Background()
}

func tableName(stmt *gorm.Statement) string {
	if stmt.Table != "" {
		return stmt.Table
	}
	if stmt.Schema != nil {
		return stmt.Schema.Table
	}
	return "?"
}

// multiDBColumns is the multidb plugin. Tenant databases have no account_id
// on tasks and subtasks, so writes leave out the fields tagged
// tenancy:"denormalised"; account_id on users and projects is filled from
// the tenant on the context, as singleschema's scope does.
type multiDBColumns struct{}

func (multiDBColumns) Name() string { return "tenancy:multidb-columns" }

func (multiDBColumns) Initialize(db *gorm.DB) error {
	adjust := func(db *gorm.DB) {
		stmt := db.Statement
		if stmt.Schema == nil {
			return
		}
		tenant, hasTenant := models.TenantFromContext(stmt.Context)
		for _, f := range stmt.Schema.Fields {
			switch f.Tag.Get("tenancy") {
			case "denormalised":
				stmt.Omits = append(stmt.Omits, f.DBName)
			case "tenant":
				if hasTenant && stmt.ReflectValue.IsValid() {
					claimRows(stmt.Context, stmt, f, tenant.ID)
				}
			}
		}
	}
	if err := db.Callback().Create().Before("gorm:create").Register("tenancy:multidb_columns", adjust); err != nil {
		return err
	}
	return db.Callback().Update().Before("gorm:update").Register("tenancy:multidb_columns", adjust)
}

// EnforceTenantScope makes the tenant scope mandatory on db, a gorm root of
// your own over a singleschema database: every statement on a model with a
// models.TenantID field is then scoped to the tenant on its context, or
// fails with ErrNoTenantScope. Row-level security still needs each tenant
// transaction to set app.tenant_id, as Strategy.Tx does.
func EnforceTenantScope(db *gorm.DB) error {
	return db.Use(tenantScope{})
}
