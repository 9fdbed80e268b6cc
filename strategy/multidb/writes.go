package multidb

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy/internal/pg"

	"tenancy/strategy"
	"tenancy/strategy/internal/writes"
)

// The writes are package writes' one implementation, on a connection of
// the tenant's own database, which needs nothing to bind it to the tenant.

func (m *Server) writer() writes.Writer { return writes.Writer{Tx: m.tx, Pipe: m.pipe} }

func (m *Server) pipe(ctx context.Context, fn func(*gorm.DB, *pgx.Conn, []writes.Statement) error) error {
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.ErrNoTenant
	}
	return m.withTenantDB(ctx, t.Slug, func(db *gorm.DB) error {
		return pg.WithPgxConn(ctx, db.Statement.ConnPool.(*sql.DB), func(c *pgx.Conn) error { return fn(db, c, nil) })
	})
}

func (m *Server) GetSubtask(ctx context.Context, id int64) (strategy.Subtask, error) {
	return m.writer().GetSubtask(ctx, id)
}

func (m *Server) CreateSubtask(ctx context.Context, in strategy.NewSubtask) (strategy.Subtask, error) {
	return m.writer().CreateSubtask(ctx, in)
}

func (m *Server) UpdateSubtask(ctx context.Context, id int64, version string, change strategy.SubtaskChange) (strategy.Subtask, error) {
	return m.writer().UpdateSubtask(ctx, id, version, change)
}

func (m *Server) DeleteSubtask(ctx context.Context, id int64, version string) error {
	return m.writer().DeleteSubtask(ctx, id, version)
}

func (m *Server) CompleteTask(ctx context.Context, id int64) (strategy.Task, error) {
	return m.writer().CompleteTask(ctx, id)
}

func (m *Server) ListTasks(ctx context.Context, limit int) ([]strategy.Task, error) {
	return m.writer().ListTasks(ctx, limit)
}
