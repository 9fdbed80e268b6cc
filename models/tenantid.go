package models

import (
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// TenantID is the type of every model's tenant column: account_id, and the
// id of Account itself. Like gorm's DeletedAt, the type hooks into every
// query, update and delete on its model (including joined and preloaded
// relations and sub-queries) and hands the statement to the TenantEnforcer
// registered on the *gorm.DB, if any; the enforcer also sees creates, from a
// callback of its own. Without a registered enforcer (multidb) it does
// nothing.
type TenantID int64

// Operation names the kind of statement a TenantEnforcer is asked to check.
type Operation int

// The operations a TenantEnforcer sees.
const (
	OpQuery Operation = iota + 1
	OpUpdate
	OpDelete
)

func (o Operation) String() string {
	switch o {
	case OpQuery:
		return "query"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return "unknown"
}

// TenantEnforcerName is the gorm plugin name under which a TenantEnforcer is
// registered with db.Use.
const TenantEnforcerName = "tenancy:tenant-enforcer"

// TenantEnforcer is a gorm plugin that scopes, or rejects, a statement on a
// tenanted model. field is the model's TenantID field.
type TenantEnforcer interface {
	gorm.Plugin
	EnforceTenant(stmt *gorm.Statement, field *schema.Field, op Operation)
}

// QueryClauses implements schema.QueryClausesInterface.
func (TenantID) QueryClauses(f *schema.Field) []clause.Interface {
	return []clause.Interface{tenantClause{field: f, op: OpQuery}}
}

// UpdateClauses implements schema.UpdateClausesInterface.
func (TenantID) UpdateClauses(f *schema.Field) []clause.Interface {
	return []clause.Interface{tenantClause{field: f, op: OpUpdate}}
}

// DeleteClauses implements schema.DeleteClausesInterface.
func (TenantID) DeleteClauses(f *schema.Field) []clause.Interface {
	return []clause.Interface{tenantClause{field: f, op: OpDelete}}
}

// tenantClause is never built into SQL itself: gorm calls ModifyStatement
// when the clause is added to a statement, and the enforcer adds the real
// conditions there.
type tenantClause struct {
	field *schema.Field
	op    Operation
}

func (tenantClause) Name() string               { return "" }
func (tenantClause) Build(clause.Builder)       {}
func (tenantClause) MergeClause(*clause.Clause) {}
func (c tenantClause) ModifyStatement(stmt *gorm.Statement) {
	if stmt.DB == nil || stmt.DB.Config == nil {
		return
	}
	if e, ok := stmt.DB.Config.Plugins[TenantEnforcerName].(TenantEnforcer); ok {
		e.EnforceTenant(stmt, c.field, c.op)
	}
}
