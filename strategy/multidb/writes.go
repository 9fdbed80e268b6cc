package multidb

import (
	"context"

	"tenancy/strategy"
	"tenancy/strategy/internal/writes"
)

// The writes are package writes' one implementation, in this strategy's
// tenant transaction.

func (m *Server) writer() writes.Writer { return writes.Writer{Tx: m.tx} }

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
