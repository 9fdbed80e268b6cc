package singleschema

// Test-only doors into singleschema for the load tests and the benchmark in
// package singleschema_test. This file is compiled only by `go test` of
// this package, so no configuration can reach them.

import (
	"context"
	"database/sql"
	"fmt"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"
)

// OpenWithSessionLevelTenant opens a singleschema server whose
// transactions set app.tenant_id with set_config(..., false): for the rest
// of the session, not of the transaction. It is the mistake the load tests
// must catch.
func OpenWithSessionLevelTenant(ctx context.Context, opts strategy.Options) (strategy.Strategy, error) {
	s, err := Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	s.sessionLevelTenant = true
	return s, nil
}

// ListSubtasksForgettingTheTenant reads a page of subtasks as a careless
// code path would: raw SQL on the app role's pool, outside Tx, so nothing
// sets app.tenant_id and row-level security alone decides what it sees. The
// tenant on ctx is ignored, as such code would ignore it.
func ListSubtasksForgettingTheTenant(ctx context.Context, s strategy.Strategy, page, perPage int) (strategy.SubtaskPage, error) {
	ss, ok := s.(*Server)
	if !ok {
		return strategy.SubtaskPage{}, fmt.Errorf("forgetful read: %s is not singleschema", s.Name())
	}
	db := ss.app.WithContext(ctx)
	out := strategy.SubtaskPage{Page: page, Rows: []models.SubtaskRow{}}
	if err := db.Raw("SELECT count(*) FROM subtasks").Scan(&out.Total).Error; err != nil {
		return strategy.SubtaskPage{}, fmt.Errorf("forgetful count: %w", pg.Classify(err))
	}
	out.Pages = max(page, int((out.Total+int64(perPage)-1)/int64(perPage)))
	err := db.Raw(`SELECT subtasks.id, subtasks.name, subtasks.is_complete, subtasks.details,
			tasks.name AS task_name, projects.name AS project_name, accounts.slug AS account_slug
		FROM subtasks
		JOIN tasks ON tasks.account_id = subtasks.account_id AND tasks.id = subtasks.task_id
		JOIN projects ON projects.account_id = tasks.account_id AND projects.id = tasks.project_id
		JOIN accounts ON accounts.id = subtasks.account_id
		ORDER BY subtasks.name, subtasks.id LIMIT ? OFFSET ?`, perPage, (page-1)*perPage).Scan(&out.Rows).Error
	if err != nil {
		return strategy.SubtaskPage{}, fmt.Errorf("forgetful page: %w", pg.Classify(err))
	}
	return out, nil
}

// TenantSettingsOfIdleConnections takes up to n connections of the
// singleschema app pool at once (opening new ones only when fewer are
// idle) and returns current_setting('app.tenant_id') on each, read outside
// any transaction: what the next unit of work on that connection would
// inherit. Transaction-local settings leave "" on every one.
func TenantSettingsOfIdleConnections(ctx context.Context, s strategy.Strategy, n int) ([]string, error) {
	ss, ok := s.(*Server)
	if !ok {
		return nil, fmt.Errorf("tenant settings: %s is not singleschema", s.Name())
	}
	pool, err := ss.app.DB()
	if err != nil {
		return nil, err
	}
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var out []string
	for range n {
		c, err := pool.Conn(ctx)
		if err != nil {
			return out, fmt.Errorf("take connection %d of %d: %w", len(conns)+1, n, err)
		}
		conns = append(conns, c)
		var v sql.NullString
		if err := c.QueryRowContext(ctx, "SELECT current_setting('app.tenant_id', true)").Scan(&v); err != nil {
			return out, fmt.Errorf("read app.tenant_id: %w", err)
		}
		out = append(out, v.String)
	}
	return out, nil
}

// OpenWithoutRoleChecks opens a singleschema server without the checks
// that refuse a role able to bypass row-level security: for the benchmark
// that measures what the policies cost, by running the same code as such a
// role.
func OpenWithoutRoleChecks(opts strategy.Options) (strategy.Strategy, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// TenantPageSQL is the statement ListSubtasks sends for a page of the
// tenant on ctx, with its arguments, for EXPLAIN.
func TenantPageSQL(ctx context.Context, s strategy.Strategy, page, perPage int) (string, []any, error) {
	ss, ok := s.(*Server)
	if !ok {
		return "", nil, fmt.Errorf("tenant page SQL: %s is not singleschema", s.Name())
	}
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return "", nil, strategy.ErrNoTenant
	}
	return ss.pages.Statement(ctx, ss.app, pages.Query{Denormalised: true}, t, page, perPage)
}
