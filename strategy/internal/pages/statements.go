package pages

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// Statements keeps the SQL gorm writes for the tenant page, one per
// shape, so that a request does not pay for gorm writing the same SQL again
// (a fifth of the server's CPU per page under load). The SQL is still
// gorm's, tenant scope included: it is written once, on a dry run as a
// marker tenant at a marker offset, and the positions of those markers
// among its arguments are where each request's tenant and offset go. The
// scope decides where the tenant conditions are; this only fills them in.
//
// It also remembers each tenant's last total, to choose which end of the
// tenant a page is nearer to (see PageQuery). A stale total only
// makes a read slower, never wrong: while the kept counts are right,
// either end gives the same rows.
type Statements struct {
	mu     sync.Mutex
	shapes map[pageShape]*pageStatement
	totals map[string]int64 // by tenant slug
}

// pageShape is what changes the SQL: gorm writes no OFFSET for page 1, and
// a page nearer the end is read from the end.
type pageShape struct {
	perPage int
	first   bool
	fromEnd bool
}

// maxTotals bounds the remembered totals; past it they are forgotten.
const maxTotals = 100_000

type pageStatement struct {
	sql      string
	args     []any
	tenantAt []int // indexes in args of the tenant id
	offsetAt []int // indexes in args of the offset
}

// Markers for the dry run: values no real tenant or offset has.
const (
	markerTenant = models.TenantID(8_070_605_040_302_010)
	markerPage   = 1_000_003
)

// Statement returns the page query's SQL and arguments for tenant t.
func (p *Statements) Statement(ctx context.Context, db *gorm.DB, q Query, t models.Account, page, perPage int) (string, []any, error) {
	shape := pageShape{perPage: perPage, first: page == 1}
	if !shape.first {
		p.mu.Lock()
		total, ok := p.totals[t.Slug]
		p.mu.Unlock()
		shape.fromEnd = ok && int64(page-1)*int64(perPage)*2 >= total
	}
	return p.statementOf(ctx, db, q, t, shape, page)
}

// NoteTotal remembers tenant slug's total from a page read that worked or
// found the page missing; a failed read says nothing about the total.
func (p *Statements) NoteTotal(slug string, page strategy.SubtaskPage, err error) {
	if err == nil || errors.Is(err, strategy.ErrPageNotFound) {
		p.remember(slug, page.Total)
	}
}

// Forget drops what is remembered of tenant slug's total: its next page
// past the first is read from the front.
func (p *Statements) Forget(slug string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.totals, slug)
}

// Remember keeps total as tenant slug's, as if a page read had seen it.
func (p *Statements) Remember(slug string, total int64) { p.remember(slug, total) }

// remember keeps tenant slug's total.
func (p *Statements) remember(slug string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.totals == nil || len(p.totals) >= maxTotals {
		p.totals = map[string]int64{}
	}
	p.totals[slug] = total
}

func (p *Statements) statementOf(ctx context.Context, db *gorm.DB, q Query, t models.Account, shape pageShape, page int) (string, []any, error) {
	perPage := shape.perPage
	p.mu.Lock()
	st, ok := p.shapes[shape]
	p.mu.Unlock()
	if !ok {
		var err error
		if st, err = writePageStatement(ctx, db, q, shape); err != nil {
			return "", nil, err
		}
		p.mu.Lock()
		if p.shapes == nil {
			p.shapes = map[pageShape]*pageStatement{}
		}
		p.shapes[shape] = st
		p.mu.Unlock()
	}
	args := make([]any, len(st.args))
	copy(args, st.args)
	for _, i := range st.tenantAt {
		args[i] = int64(t.ID)
	}
	for _, i := range st.offsetAt {
		args[i] = (page - 1) * perPage
	}
	if q.SchemaOf == nil {
		return st.sql, args, nil
	}
	return strings.ReplaceAll(st.sql, markerSchemaQuoted, pg.QuoteIdent(q.SchemaOf(t.ID))+"."), args, nil
}

// markerSchemaQuoted is markerSchema where a statement names a table in it.
var markerSchemaQuoted = pg.QuoteIdent(markerSchema) + "."

// unqualified finds a table of the page named without its schema.
var unqualified = regexp.MustCompile(`(?i)\b(FROM|JOIN)\s+"?(subtasks|tasks|projects|subtask_counts|accounts)\b`)

// writePageStatement has gorm write the page query as the marker tenant
// and finds the markers among its arguments.
func writePageStatement(ctx context.Context, db *gorm.DB, q Query, shape pageShape) (*pageStatement, error) {
	page := markerPage
	if shape.first {
		page = 1
	}
	marker := models.Account{ID: markerTenant, Slug: "statement-marker"}
	dry := PageQuery(db.Session(&gorm.Session{DryRun: true, NewDB: true, Context: models.NewContextWithTenant(ctx, marker)}),
		q, page, shape.perPage, shape.fromEnd).Find(&[]Row{})
	if dry.Error != nil {
		return nil, fmt.Errorf("write the page statement: %w", dry.Error)
	}
	st := &pageStatement{sql: dry.Statement.SQL.String(), args: dry.Statement.Vars}
	offset := (page - 1) * shape.perPage
	for i, a := range st.args {
		switch v := a.(type) {
		case int64:
			if v == int64(markerTenant) {
				st.tenantAt = append(st.tenantAt, i)
			}
		case models.TenantID:
			if v == markerTenant {
				st.tenantAt = append(st.tenantAt, i)
			}
		case int:
			if !shape.first && v == offset {
				st.offsetAt = append(st.offsetAt, i)
			}
		}
	}
	// In singleschema the scope puts the tenant in the page's ids, its rows
	// and its total (multidb has no tenant column to scope). A later page
	// has its offset once, in its OFFSET, or, read from the end, twice (the
	// OFFSET and LIMIT counted from the end). Anything else means the
	// statement is not what this expects.
	wantOffsets := 0
	switch {
	case shape.fromEnd:
		wantOffsets = 2
	case !shape.first:
		wantOffsets = 1
	}
	if (q.Denormalised && len(st.tenantAt) != 3) || len(st.offsetAt) != wantOffsets {
		return nil, fmt.Errorf("write the page statement: found the tenant %d times and the offset %d times in %q",
			len(st.tenantAt), len(st.offsetAt), st.sql)
	}
	if q.SchemaOf != nil {
		// The schema goes in where the marker is, quoted: no table may be
		// named another way.
		if m := unqualified.FindString(st.sql); m != "" || !strings.Contains(st.sql, markerSchemaQuoted) {
			return nil, fmt.Errorf("write the page statement: %q names a table without its schema in %q", m, st.sql)
		}
	}
	return st, nil
}
