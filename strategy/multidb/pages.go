package multidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// The subtask list, from the handler's call to the SQL: ListSubtasks takes
// the statement gorm wrote for this page's shape (internal/pages) and runs
// it on a connection of the tenant's own database, where there is no
// other tenant to keep out, so no transaction is needed.

func (m *Server) ListSubtasks(ctx context.Context, page, perPage int) (strategy.SubtaskPage, error) {
	if models.IsAllTenants(ctx) {
		return strategy.SubtaskPage{}, fmt.Errorf("all-tenants subtask list: %w (each tenant has its own database)", strategy.ErrNotSupported)
	}
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.SubtaskPage{}, strategy.ErrNoTenant
	}
	if err := pages.Check(page, perPage); err != nil {
		return strategy.SubtaskPage{Page: page}, err
	}
	// No transaction: the page and its total are one statement, and the
	// database holds no other tenant to keep out.
	var out strategy.SubtaskPage
	err := m.withTenantDB(ctx, t.Slug, func(db *gorm.DB) error {
		query, args, err := m.pages.Statement(ctx, m.root, pages.Query{}, t, page, perPage)
		if err != nil {
			return err
		}
		rows := make([]pages.Row, 0, perPage)
		err = pg.WithPgxConn(ctx, db.Statement.ConnPool.(*sql.DB), func(c *pgx.Conn) error {
			r, err := c.Query(ctx, query, args...)
			if err != nil {
				return err
			}
			defer r.Close()
			return errors.Join(pages.Scan(r, &rows), r.Err())
		})
		if err != nil {
			return err
		}
		out, err = pages.Finish(db, page, perPage, rows)
		m.pages.NoteTotal(t.Slug, out, err)
		return err
	})
	return out, err
}
