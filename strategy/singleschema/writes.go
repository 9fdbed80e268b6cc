package singleschema

import (
	"context"

	"tenancy/strategy"
	"tenancy/strategy/internal/writes"
)

// The writes are package writes' one implementation, in this strategy's
// tenant transaction.

func (s *Server) writer() writes.Writer { return writes.Writer{Tx: s.tx} }

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
