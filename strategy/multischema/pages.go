package multischema

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pages"
	"tenancy/strategy/internal/pg"
)

// The subtask list, from the handler's call to the SQL: ListSubtasks takes
// the statement gorm wrote for this page's shape (internal/pages; the same
// as multidb's, as the tables are), with every table named with the
// tenant's schema, sends it after the statement that takes on the tenant's
// role, in one round trip (readInOneTrip), and checks the rows are the
// tenant's. The all-tenants list (listAllTenants) finds where a page
// starts from the kept totals in public, then reads the one or few schemas
// the page covers, as the reader.

// pageQuery is how multischema's page statement differs from multidb's:
// its tables are named with the tenant's schema. The search_path is left
// alone, as PostgreSQL plans a prepared statement again whenever the
// search_path differs from the one it was planned under: a connection that
// serves tenant after tenant through one statement and the search_path
// plans it on every request (see docs/strategies.md for what each costs).
var pageQuery = pages.Query{SchemaOf: SchemaOf}

func (s *Server) ListSubtasks(ctx context.Context, page, perPage int) (strategy.SubtaskPage, error) {
	if models.IsAllTenants(ctx) {
		var out strategy.SubtaskPage
		err := s.readerTurns.Do(ctx, func() error {
			var err error
			out, err = s.listAllTenants(ctx, page, perPage)
			return err
		})
		if err != nil && !errors.Is(err, strategy.ErrPageNotFound) {
			err = fmt.Errorf("all tenants: %w", pg.Classify(err))
		}
		return out, err
	}
	t, ok := models.TenantFromContext(ctx)
	if !ok {
		return strategy.SubtaskPage{}, strategy.ErrNoTenant
	}
	if err := pages.Check(page, perPage); err != nil {
		return strategy.SubtaskPage{Page: page}, err
	}
	if err := s.auditTenant(ctx, t); err != nil {
		return strategy.SubtaskPage{}, s.notFoundIfGone(ctx, t, err)
	}
	query, args, err := s.pages.Statement(ctx, s.app, pageQuery, t, page, perPage)
	if err != nil {
		return strategy.SubtaskPage{}, fmt.Errorf("tenant %s: %w", t.Slug, err)
	}
	rows := make([]pages.Row, 0, perPage)
	err = s.readInOneTrip(ctx, t, query, args, func(r pgx.Rows) error { return pages.Scan(r, &rows) })
	if err != nil {
		return strategy.SubtaskPage{}, s.notFoundIfGone(ctx, t, err)
	}
	for _, r := range rows {
		if r.AccountSlug != t.Slug {
			// The schema this slug's account points to holds another
			// account's rows: the slug moved to another account. Serve
			// nothing; the next request resolves the slug afresh.
			s.accounts.Forget(t.Slug)
			return strategy.SubtaskPage{}, fmt.Errorf("%w: tenant %s: the rows read belong to account %q; the address now names another account, try again",
				strategy.ErrUnavailable, t.Slug, r.AccountSlug)
		}
	}
	var out strategy.SubtaskPage
	if len(rows) > 0 {
		out = pages.New(page, perPage, rows[0].Total, rows)
	} else {
		err = s.tx(ctx, pages.Snapshot(), func(tx *gorm.DB) error {
			out, err = pages.Finish(tx, page, perPage, nil)
			return err
		})
	}
	s.pages.NoteTotal(t.Slug, out, err)
	return out, err
}

// roleSQL takes on a tenant's role for the rest of the transaction, and
// nothing else: the page statement names its schema.
const roleSQL = "SELECT set_config('role', $1, true)"

// roleStatement is roleSQL's name where it is prepared: once per
// connection, as the app role (it names no table), so that the pipeline
// does not parse and plan it on every request (the app pool runs pgx's
// exec mode, which otherwise would).
const roleStatement = "tenancy_take_role"

// readInOneTrip runs query (with args) as tenant t in one round trip: the
// statement that takes on the tenant's role and the read go out together
// as a pgx pipeline ending in one Sync, which PostgreSQL runs as one
// implicit transaction, so the role holds for the read and is gone after
// it.
//
// The read is, where it can be, a statement prepared on the connection,
// whose plan PostgreSQL keeps. The app role itself may use no tenant's
// schema, so it cannot prepare one before the pipeline: a statement not
// prepared on the connection goes unnamed in the pipeline (the app pool
// runs pgx's exec mode, which parses it after the role is taken on) and
// is planned for that request; the second time a connection sees it
// within a while, it is prepared as the tenant, in a transaction
// (readPreparing), and the connection keeps the most recently used
// maxPrepared of them (preparedPages). Preparing at first sight cost more
// than it saved at 1,000 tenants, whose 3,000 statements went through
// the 512 kept faster than they were used again.
func (s *Server) readInOneTrip(ctx context.Context, t models.Account, query string, args []any, scan func(pgx.Rows) error) error {
	err := s.appTurns.Do(ctx, func() error {
		defer func(begin time.Time) {
			s.app.Logger.Trace(ctx, begin, func() (string, int64) { return query, -1 }, nil)
		}(time.Now())
		return pg.WithPgxConn(ctx, s.pools[0], func(c *pgx.Conn) error {
			statement, role := query, roleSQL
			if s.prepares() {
				p := preparedOn(c)
				if err := p.prepareRole(ctx, c); err != nil {
					return err
				}
				role = roleStatement
				name := statementName(query)
				switch {
				case p.use(name):
					statement = name
				case p.admit(name):
					return s.readPreparing(ctx, c, t, name, query, args, scan)
				}
			}
			b := &pgx.Batch{}
			b.Queue(role, RoleOf(s.opts, t.ID))
			b.Queue(statement, args...)
			results := c.SendBatch(ctx, b)
			if _, err := results.Exec(); err != nil {
				return errors.Join(fmt.Errorf("take on the tenant: %w", err), results.Close())
			}
			rows, err := results.Query()
			if err == nil {
				err = scan(rows)
				rows.Close()
				err = errors.Join(err, rows.Err())
			}
			return errors.Join(err, results.Close())
		})
	})
	return s.tenantError(t, err)
}

// prepares reports whether the server keeps prepared statements on its
// connections: not when DB_QUERY_EXEC_MODE asks for pgx's exec or simple
// modes (behind PgBouncer before 1.21, which cannot keep them), where
// every statement is parsed in the pipeline, after the tenant is taken
// on. (The app pool runs exec mode either way; see Open.)
func (s *Server) prepares() bool {
	switch s.opts.QueryExecMode {
	case "exec", "simple_protocol":
		return false
	}
	return true
}

// statementName names the prepared statement of query on every
// connection.
func statementName(query string) string {
	sum := sha256.Sum256([]byte(query))
	return "tenancy_" + hex.EncodeToString(sum[:12])
}

// readPreparing is readInOneTrip in a transaction of four round trips
// that prepares query, named statement, as tenant t on c, and then, past
// maxPrepared, deallocates the connection's least recently used one.
func (s *Server) readPreparing(ctx context.Context, c *pgx.Conn, t models.Account, statement, query string, args []any, scan func(pgx.Rows) error) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, roleSQL, RoleOf(s.opts, t.ID)); err != nil {
		return fmt.Errorf("take on the tenant: %w", err)
	}
	if _, err := c.Prepare(ctx, statement, query); err != nil {
		return err
	}
	evict := preparedOn(c).add(statement)
	rows, err := tx.Query(ctx, statement, args...)
	if err != nil {
		return err
	}
	err = scan(rows)
	rows.Close()
	if err = errors.Join(err, rows.Err()); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if evict != "" {
		return c.Deallocate(ctx, evict)
	}
	return nil
}

// maxPrepared is how many page statements a connection keeps prepared:
// three shapes (first page, from the front, from the end) for each of up
// to about 170 tenants. Each holds its plan and parse tree in the
// backend's memory (about 130 kB measured, so up to about 65 MB per
// connection; see docs/performance.md); a tenant whose statements were
// dropped has them prepared again, at the cost of a plan.
const maxPrepared = 512

// preparedPages is what one connection has prepared of the page
// statements: when each was last used, by name; and the statements it
// has seen once since seen was last emptied (at maxPrepared of them),
// which are prepared the next time.
type preparedPages struct {
	used  map[string]uint64
	seen  map[string]struct{}
	clock uint64
	role  bool // roleStatement is prepared
}

// prepareRole prepares roleStatement on c unless it is already.
func (p *preparedPages) prepareRole(ctx context.Context, c *pgx.Conn) error {
	if p.role {
		return nil
	}
	if _, err := c.Prepare(ctx, roleStatement, roleSQL); err != nil {
		return fmt.Errorf("prepare the statement that takes on a tenant: %w", err)
	}
	p.role = true
	return nil
}

// preparedKey is where a connection keeps its preparedPages, among the
// data pgx keeps with it.
const preparedKey = "tenancy.multischema.prepared"

// preparedOn is c's preparedPages. A connection serves one request at a
// time, so they need no lock.
func preparedOn(c *pgx.Conn) *preparedPages {
	data := c.PgConn().CustomData()
	p, ok := data[preparedKey].(*preparedPages)
	if !ok {
		p = &preparedPages{used: map[string]uint64{}, seen: map[string]struct{}{}}
		data[preparedKey] = p
	}
	return p
}

// use reports whether name is prepared, and marks it used.
func (p *preparedPages) use(name string) bool {
	if _, ok := p.used[name]; !ok {
		return false
	}
	p.clock++
	p.used[name] = p.clock
	return true
}

// admit reports whether name, not prepared, is worth preparing: whether
// it was seen before, recently. Otherwise it notes that it was seen.
func (p *preparedPages) admit(name string) bool {
	if _, ok := p.seen[name]; ok {
		delete(p.seen, name)
		return true
	}
	if len(p.seen) >= maxPrepared {
		clear(p.seen)
	}
	p.seen[name] = struct{}{}
	return false
}

// add records name as prepared and returns the least recently used one
// to deallocate when that makes more than maxPrepared ("" when not).
func (p *preparedPages) add(name string) (evict string) {
	p.clock++
	p.used[name] = p.clock
	if len(p.used) <= maxPrepared {
		return ""
	}
	oldest := p.clock
	for n, at := range p.used {
		if at < oldest {
			evict, oldest = n, at
		}
	}
	delete(p.used, evict)
	return evict
}

// tenantTotal is one tenant's place in the all-tenants list.
type tenantTotal struct {
	id       models.TenantID
	subtasks int64
}

// listAllTenants reads one page of the all-tenants list, tenant by tenant
// in account id order, then by name and id, as singleschema's. Opening
// every tenant's tables to find where a page starts would take a lock on
// each (thousands of lock slots at thousands of tenants) and plan a union
// of them all; instead the kept totals in public (one row a tenant) say
// which tenant the page starts in and how far into it, and the page is
// read from that tenant's schema, and the next ones' when it runs over,
// each from whichever end of the tenant is nearer. One read-only,
// repeatable-read transaction, so the totals and the rows agree.
func (s *Server) listAllTenants(ctx context.Context, page, perPage int) (strategy.SubtaskPage, error) {
	if err := pages.Check(page, perPage); err != nil {
		return strategy.SubtaskPage{Page: page}, err
	}
	var out strategy.SubtaskPage
	err := pg.WithPgxConn(ctx, s.pools[1], func(c *pgx.Conn) error {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
		totals, total, err := readTotals(ctx, tx)
		if err != nil {
			return err
		}
		out = pages.New(page, perPage, total, nil)
		offset := int64(page-1) * int64(perPage)
		if offset >= total {
			if page > out.Pages {
				return strategy.ErrPageNotFound
			}
			return nil
		}
		var rows []pages.Row
		for _, tt := range totals {
			if offset >= tt.subtasks {
				offset -= tt.subtasks
				continue
			}
			want := min(int64(perPage-len(rows)), tt.subtasks-offset)
			got, err := readTenantRows(ctx, tx, tt, offset, want)
			if err != nil {
				return err
			}
			rows = append(rows, got...)
			offset = 0
			if len(rows) == perPage {
				break
			}
		}
		out = pages.New(page, perPage, total, rows)
		return nil
	})
	return out, err
}

// readTotals reads every tenant's kept total, in account order, and their
// sum.
func readTotals(ctx context.Context, tx pgx.Tx) ([]tenantTotal, int64, error) {
	rows, err := tx.Query(ctx, `SELECT account_id, subtasks FROM public.tenant_totals WHERE subtasks > 0 ORDER BY account_id`)
	if err != nil {
		return nil, 0, fmt.Errorf("read the tenants' totals: %w", err)
	}
	defer rows.Close()
	var out []tenantTotal
	var sum int64
	for rows.Next() {
		var tt tenantTotal
		if err := rows.Scan(&tt.id, &tt.subtasks); err != nil {
			return nil, 0, err
		}
		sum += tt.subtasks
		out = append(out, tt)
	}
	return out, sum, rows.Err()
}

// tenantRowsSQL reads n rows of one tenant's list from offset, with their
// parents, by name then id; fromEndSQL reads the same rows counting from
// the other end, for an offset past the middle (an OFFSET walks every
// index entry before it). %[1]s is the tenant's schema, quoted.
const (
	tenantRowsSQL = `SELECT s.id, s.name, s.is_complete, s.details, t.name, p.name, a.slug, a.name, 0::bigint
FROM (SELECT id, task_id, name, is_complete, details FROM %[1]s.subtasks ORDER BY name, id OFFSET $1 LIMIT $2) s
LEFT JOIN %[1]s.tasks t ON t.id = s.task_id
LEFT JOIN %[1]s.projects p ON p.id = t.project_id
LEFT JOIN public.accounts a ON a.id = p.account_id
ORDER BY s.name, s.id`
	fromEndSQL = `SELECT s.id, s.name, s.is_complete, s.details, t.name, p.name, a.slug, a.name, 0::bigint
FROM (SELECT id, task_id, name, is_complete, details FROM %[1]s.subtasks ORDER BY name DESC, id DESC OFFSET $1 LIMIT $2) s
LEFT JOIN %[1]s.tasks t ON t.id = s.task_id
LEFT JOIN %[1]s.projects p ON p.id = t.project_id
LEFT JOIN public.accounts a ON a.id = p.account_id
ORDER BY s.name, s.id`
)

// readTenantRows reads n rows of tenant tt's list from offset.
func readTenantRows(ctx context.Context, tx pgx.Tx, tt tenantTotal, offset, n int64) ([]pages.Row, error) {
	query, skip := tenantRowsSQL, offset
	if offset*2 >= tt.subtasks {
		query, skip = fromEndSQL, tt.subtasks-offset-n
	}
	r, err := tx.Query(ctx, fmt.Sprintf(query, pg.QuoteIdent(SchemaOf(tt.id))), skip, n)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", SchemaOf(tt.id), err)
	}
	defer r.Close()
	var rows []pages.Row
	if err := pages.Scan(r, &rows); err != nil {
		return nil, err
	}
	return rows, r.Err()
}
