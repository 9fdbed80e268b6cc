package claim

import (
	"strings"
	"tenancy/models"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// OwnTables is the gorm plugin of strategies that give each tenant tables
// of its own (a database, a schema): those have no account_id on tasks and
// subtasks, so statements leave out the fields tagged tenancy:"denormalised"
// that singleschema needs (in selects, joins and writes); account_id on
// users and projects is filled from the tenant on the context, as
// singleschema's scope does.
type OwnTables struct{}

// Name is the plugin's name.
func (OwnTables) Name() string { return "tenancy:own-tables" }

// Initialize registers the plugin's callbacks on db.
func (OwnTables) Initialize(db *gorm.DB) error {
	write := func(db *gorm.DB) {
		stmt := db.Statement
		if stmt.Schema == nil {
			return
		}
		omitDenormalised(stmt)
		tenant, ok := models.TenantFromContext(stmt.Context)
		for _, f := range stmt.Schema.Fields {
			if ok && f.Tag.Get("tenancy") == "tenant" {
				Rows(stmt.Context, stmt, f, int64(tenant.ID))
			}
		}
	}
	read := func(db *gorm.DB) {
		stmt := db.Statement
		if stmt.Schema == nil {
			return
		}
		omitDenormalised(stmt)
		// A nested join ("Task.Project") shares one column filter across
		// its chain, so the columns of every schema along it are left out.
		for i, j := range stmt.Joins {
			s := stmt.Schema
			for _, name := range strings.Split(j.Name, ".") {
				rel, ok := s.Relationships.Relations[name]
				if !ok {
					break
				}
				s = rel.FieldSchema
				stmt.Joins[i].Omits = append(stmt.Joins[i].Omits, denormalised(s)...)
			}
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("tenancy:multidb_columns", write),
		cb.Update().Before("gorm:update").Register("tenancy:multidb_columns", write),
		cb.Query().Before("gorm:query").Register("tenancy:multidb_columns", read),
		cb.Row().Before("gorm:row").Register("tenancy:multidb_columns", read),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func omitDenormalised(stmt *gorm.Statement) {
	stmt.Omits = append(stmt.Omits, denormalised(stmt.Schema)...)
}

func denormalised(s *schema.Schema) []string {
	var cols []string
	for _, f := range s.Fields {
		if f.Tag.Get("tenancy") == "denormalised" {
			cols = append(cols, f.DBName)
		}
	}
	return cols
}
