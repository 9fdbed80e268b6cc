package singleschema

import (
	"context"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy/internal/pg"

	"tenancy/strategy"
	"tenancy/strategy/internal/writes"
)

// The writes are package writes' one implementation, bound to the tenant
// as its transactions are: the tenant scope on every statement gorm
// writes, and app.tenant_id set for the transaction, which row-level
// security reads.

func (s *Server) writer() writes.Writer { return writes.Writer{Tx: s.tx, Pipe: s.pipe} }

// pipe runs fn, a write's whole conversation, on a connection of the app
// pool bound to the context's tenant. On Citus a conversation planned on
// a shard that a split or a move replaced before it committed is run
// once more from its start, bound afresh (pg.AgainAfterSplit): nothing of
// it was written, and the client need not see the shard change. Never
// when its COMMIT had been sent.
func (s *Server) pipe(ctx context.Context, fn func(*gorm.DB, *pgx.Conn, []writes.Statement) error) error {
	return s.asTenant(ctx, func(t models.Account) error {
		return pg.OnceMoreAfterSplit(func() error {
			how := s.tenantSetting()
			bind := []writes.Statement{{SQL: how.sql(), Args: []any{how.arg(int64(t.ID))}}}
			return pg.WithPgxConn(ctx, s.pools[0], func(c *pgx.Conn) error { return fn(s.app.WithContext(ctx), c, bind) })
		})
	})
}

func (s *Server) GetSubtask(ctx context.Context, id int64) (strategy.Subtask, error) {
	return s.writer().GetSubtask(ctx, id)
}

func (s *Server) CreateSubtask(ctx context.Context, in strategy.NewSubtask) (strategy.Subtask, error) {
	return s.writer().CreateSubtask(ctx, in)
}

func (s *Server) UpdateSubtask(ctx context.Context, id int64, version string, change strategy.SubtaskChange) (strategy.Subtask, error) {
	return s.writer().UpdateSubtask(ctx, id, version, change)
}

func (s *Server) DeleteSubtask(ctx context.Context, id int64, version string) error {
	return s.writer().DeleteSubtask(ctx, id, version)
}

func (s *Server) CompleteTask(ctx context.Context, id int64) (strategy.Task, error) {
	return s.writer().CompleteTask(ctx, id)
}

func (s *Server) ListTasks(ctx context.Context, limit int) ([]strategy.Task, error) {
	return s.writer().ListTasks(ctx, limit)
}
