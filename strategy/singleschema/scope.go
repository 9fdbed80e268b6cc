package singleschema

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/claim"
)

// tenantScope is the gorm plugin that makes the tenant scope mandatory in
// singleschema. models.TenantID hands it every query, update and delete on a
// tenanted model, including relations reached through Joins and Preload and
// queries used as sub-queries; a create callback covers inserts (gorm skips
// create clauses under Unscoped). With a tenant on the statement's context
// it scopes reads and checks writes; with models.NewContextForAllTenants it
// lets reads through; otherwise the statement fails with strategy.ErrNoTenantScope
// and, should its SQL be used anyway (a sub-query), matches no row.
//
// Raw and Exec carry no model, so they are not seen here: row-level
// security is the backstop for those.
type tenantScope struct{}

var _ models.TenantEnforcer = tenantScope{}

func (tenantScope) Name() string { return models.TenantEnforcerName }

func (tenantScope) Initialize(db *gorm.DB) error {
	tables := map[string]bool{}
	for _, m := range models.Tenanted() {
		s, err := schema.Parse(m, &sync.Map{}, db.NamingStrategy)
		if err != nil {
			return fmt.Errorf("read the tenanted models: %w", err)
		}
		tables[s.Table] = true
	}
	refuse := func(op models.Operation) func(*gorm.DB) { return func(db *gorm.DB) { refuseBareTable(db, tables, op) } }
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("tenancy:tenant_scope", enforceCreate),
		cb.Create().Before("gorm:create").Register("tenancy:tenant_table", refuse(opCreate)),
		cb.Query().Before("gorm:query").Register("tenancy:tenant_table", refuse(models.OpQuery)),
		cb.Row().Before("gorm:row").Register("tenancy:tenant_table", refuse(models.OpQuery)),
		cb.Update().Before("gorm:update").Register("tenancy:tenant_table", refuse(models.OpUpdate)),
		cb.Delete().Before("gorm:delete").Register("tenancy:tenant_table", refuse(models.OpDelete)),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// opCreate names creates in refuseBareTable's errors; models.Operation has
// no create, because the enforcer sees creates through its own callback.
const opCreate models.Operation = 0

// refuseBareTable refuses a statement that names a tenanted table with
// Table() while its model (or destination) is not a tenanted model: gorm
// then adds no tenant clause, so the statement would read or write every
// tenant's rows where row-level security does not apply. Sub-queries
// ("(?) AS x") are scoped on their own; an explicit all-tenants read is
// let through, as on the models.
func refuseBareTable(db *gorm.DB, tenanted map[string]bool, op models.Operation) {
	stmt := db.Statement
	if db.Error != nil || tenantField(stmt.Schema) != nil {
		return
	}
	table := namedTable(stmt)
	if !tenanted[table] {
		return
	}
	if op == models.OpQuery && models.IsAllTenants(claim.StatementContext(stmt)) {
		return
	}
	verb := op.String()
	if op == opCreate {
		verb = "create"
	}
	stmt.AddError(fmt.Errorf("%w: %s on table %s named with Table() and no tenanted model: the tenant condition cannot be added; use Model(&models.<Model>{}) or a destination of the model's type", strategy.ErrNoTenantScope, verb, table))
	failClosed(stmt)
}

// namedTable is the table a statement's Table() names, without schema,
// quotes or alias; empty for a sub-query or no Table() at all.
func namedTable(stmt *gorm.Statement) string {
	name := stmt.Table
	if stmt.TableExpr != nil {
		name = strings.TrimSpace(stmt.TableExpr.SQL)
		if strings.HasPrefix(name, "(") {
			return ""
		}
		if i := strings.IndexAny(name, " \t\n\r"); i >= 0 {
			name = name[:i]
		}
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return strings.ToLower(strings.Trim(name, "\"`"))
}

// Markers in stmt.Clauses keep a statement from being scoped twice when gorm
// adds the model's clauses again (e.g. Count followed by Find).
const (
	scopedMarker = "tenancy:tenant_scoped"
	closedMarker = "tenancy:closed"
)

func (tenantScope) EnforceTenant(stmt *gorm.Statement, field *schema.Field, op models.Operation) {
	ctx := claim.StatementContext(stmt)
	if models.IsAllTenants(ctx) {
		if op != models.OpQuery {
			stmt.AddError(fmt.Errorf("%w: %s on %s: the all-tenants scope is read-only", strategy.ErrNoTenantScope, op, claim.TableName(stmt)))
			failClosed(stmt)
		}
		return
	}
	tenant, ok := models.TenantFromContext(ctx)
	if !ok {
		stmt.AddError(fmt.Errorf("%w: %s on %s: run it through strategy.Strategy.Tx with a tenant on the context, or ask for all tenants explicitly", strategy.ErrNoTenantScope, op, claim.TableName(stmt)))
		failClosed(stmt)
		return
	}
	tenantID := int64(tenant.ID)
	if op == models.OpUpdate {
		checkAssignments(ctx, stmt, field, tenantID)
	}
	if _, done := stmt.Clauses[scopedMarker]; done {
		return
	}
	groupConditions(stmt)
	stmt.AddClause(clause.Where{Exprs: []clause.Expression{
		clause.Eq{Column: clause.Column{Table: clause.CurrentTable, Name: field.DBName}, Value: tenantID},
	}})
	stmt.Clauses[scopedMarker] = clause.Clause{}
}

// groupConditions puts all of the caller's conditions in one pair of
// parentheses before the tenant condition is added, so that "a OR b" AND
// tenant cannot become "a OR (b AND tenant)". Always: gorm itself
// parenthesises a raw condition only when it finds " OR " with spaces,
// and "a = ?\nOR b" or "(a)OR(b)" has none.
func groupConditions(stmt *gorm.Statement) {
	c, ok := stmt.Clauses["WHERE"]
	if !ok {
		return
	}
	where, ok := c.Expression.(clause.Where)
	if !ok || len(where.Exprs) == 0 {
		return
	}
	where.Exprs = []clause.Expression{grouped{clause.And(where.Exprs...)}}
	c.Expression = where
	stmt.Clauses["WHERE"] = c
}

// grouped is an expression in parentheses.
type grouped struct{ clause.Expression }

func (g grouped) Build(b clause.Builder) {
	b.WriteByte('(')
	g.Expression.Build(b)
	b.WriteByte(')')
}

// failClosed makes a refused statement match no row, in case its SQL is
// used despite the error (gorm renders a sub-query on its own session and
// drops that session's error).
func failClosed(stmt *gorm.Statement) {
	if _, done := stmt.Clauses[closedMarker]; done {
		return
	}
	stmt.AddClause(clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "FALSE"}}})
	stmt.Clauses[closedMarker] = clause.Clause{}
}

// checkAssignments refuses an update that would move rows to another
// tenant, and fills a zero tenant id in a struct being saved with the
// tenant's (gorm's Save writes every column, zero ones included).
func checkAssignments(ctx context.Context, stmt *gorm.Statement, field *schema.Field, tenantID int64) {
	switch dest := stmt.Dest.(type) {
	case map[string]any:
		claim.Map(stmt, dest, field, tenantID, false)
	default:
		claim.Value(ctx, stmt, reflect.ValueOf(stmt.Dest), field, tenantID)
	}
}

// enforceCreate scopes inserts into tenanted tables: rows without a tenant
// get the context's, rows of another tenant are refused, and an upsert that
// would update on conflict is refused (its UPDATE has no tenant condition).
func enforceCreate(db *gorm.DB) {
	stmt := db.Statement
	field := tenantField(stmt.Schema)
	if field == nil || db.Error != nil {
		return
	}
	ctx := claim.StatementContext(stmt)
	tenant, ok := models.TenantFromContext(ctx)
	if !ok {
		stmt.AddError(fmt.Errorf("%w: create on %s: run it through strategy.Strategy.Tx with a tenant on the context", strategy.ErrNoTenantScope, claim.TableName(stmt)))
		return
	}
	if c, ok := stmt.Clauses["ON CONFLICT"]; ok {
		if oc, ok := c.Expression.(clause.OnConflict); ok && (oc.UpdateAll || len(oc.DoUpdates) > 0) {
			stmt.AddError(fmt.Errorf("%w: create on %s with ON CONFLICT DO UPDATE (as Save of a row that is not the tenant's does): the update would not be scoped", strategy.ErrCrossTenantWrite, claim.TableName(stmt)))
			return
		}
	}
	claim.Rows(ctx, stmt, field, int64(tenant.ID))
}

// tenantField is the schema's models.TenantID field, if any.
func tenantField(s *schema.Schema) *schema.Field {
	if s == nil {
		return nil
	}
	for _, f := range s.Fields {
		if f.FieldType == tenantIDType {
			return f
		}
	}
	return nil
}

var tenantIDType = reflect.TypeOf(models.TenantID(0))

// EnforceTenantScope makes the tenant scope mandatory on db, a gorm root of
// your own over a singleschema Database: every statement on a model with a
// models.TenantID field is then scoped to the tenant on its context, or
// fails with strategy.ErrNoTenantScope. Row-level security still needs each tenant
// transaction to set app.tenant_id, as strategy.Strategy.Tx does.
func EnforceTenantScope(db *gorm.DB) error {
	return db.Use(tenantScope{})
}
