package strategy

import (
	"context"
	"io"

	"tenancy/models"
)

// TenantExporter is implemented by every strategy's Admin: it reads one
// tenant's rows out in a form that does not depend on where the strategy
// keeps them, so they can be loaded into any strategy (see
// internal/tenantfile). It is an interface of its own, beside Admin, so
// that code which only sets up and seeds need not know it.
type TenantExporter interface {
	// ExportTenant reads tenant slug's rows from one consistent snapshot
	// (a REPEATABLE READ, READ ONLY transaction), so rows written while it
	// runs are either all in the export or all out of it. For each table
	// of DataTables, in that order, it asks table for a writer and copies
	// the table's rows of that tenant into it as PostgreSQL's COPY text
	// format (TimeZone UTC, DateStyle ISO), with the columns
	// ExportColumns names, in id order. It returns the account as read in
	// the snapshot; ErrTenantNotFound when there is no such tenant.
	ExportTenant(ctx context.Context, slug string, table func(name string) (io.Writer, error)) (models.Account, error)
}

// ExportColumns names the columns ExportTenant writes of each table, in
// DataTables order: the tenant's own data, and the ids that tie a row to
// its parent (an importer gives new ones). What a strategy adds (the
// account_id singleschema repeats on tasks and subtasks) and what triggers
// keep (subtask_counts) are left out: an importer rebuilds them.
func ExportColumns() [][]string {
	return [][]string{
		{"id", "slug", "name"},
		{"id", "email", "first_name", "last_name", "password", "is_active", "date_joined"},
		{"id", "name", "details"},
		{"id", "project_id", "name", "is_complete", "details"},
		{"id", "task_id", "name", "is_complete", "details"},
	}
}
