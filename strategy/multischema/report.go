package multischema

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
)

// The cross-tenant report reads every tenant's schema as the reader, the
// role that may read them all (and write none), in UNION ALL statements of
// reportChunk schemas each: one statement up to reportChunk tenants.
//
// Why not always one statement over every schema: a statement takes a
// lock on each table and index it reads (here 7 a schema: subtasks and
// tasks with their indexes) and holds them until its transaction ends,
// in PostgreSQL's shared lock table, sized max_locks_per_transaction (64)
// × max_connections slots; at 1,000 schemas one statement would want
// 7,000 of a default server's 6,400 and fail with "out of shared memory",
// as one transaction migrating every schema does (locklimit_test.go), and
// it would plan 1,000 branches at once. Neither would statements of a
// schema each in one transaction help: the locks pile up the same. So
// each chunk is a statement, and a transaction, of its own, which holds
// at most 700 slots: each tenant's counts come from one snapshot, but
// tenants of different chunks are read moments apart, which a report of
// independent tenants can afford (the all-tenants page cannot, and reads
// its few schemas in one transaction instead).
//
// It stays fail-closed as every read here is: the reader resolves only
// the schemas it was granted USAGE on, each branch names its schema from
// the account's id in public.accounts (SchemaOf, quoted, never input), and
// the branch states that account id itself, so a schema's counts can be
// attributed to no other tenant. A schema that is missing, incomplete or
// not granted fails its chunk's statement; the chunk is then read schema
// by schema, and the schemas at fault are listed as unreachable while the
// others are reported.

// reportChunk is how many tenant schemas one statement of the report
// reads.
const reportChunk = 100

// openSubtasksBranch counts one tenant's open subtasks and the projects
// that have any: %[1]d is its account id, %[2]s its schema, quoted. An
// aggregate without GROUP BY is one row, so every tenant gets one.
const openSubtasksBranch = `SELECT %[1]d::bigint AS account_id, count(*) AS open_subtasks, count(DISTINCT t.project_id) AS projects
FROM %[2]s.subtasks s JOIN %[2]s.tasks t ON t.id = s.task_id WHERE NOT s.is_complete`

// ReportOpenSubtasks is the cross-tenant report (see above).
func (s *Server) ReportOpenSubtasks(ctx context.Context, o strategy.ReportOptions) (strategy.OpenSubtasksReport, error) {
	return s.reportOpenSubtasks(ctx, o, reportChunk)
}

// reportOpenSubtasks is the report, read perStatement schemas a
// statement.
func (s *Server) reportOpenSubtasks(ctx context.Context, o strategy.ReportOptions, perStatement int) (strategy.OpenSubtasksReport, error) {
	if !models.IsAllTenants(ctx) {
		return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report: %w", strategy.ErrNotAllTenants)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.TimeoutOrDefault())
	defer cancel()
	out := strategy.OpenSubtasksReport{Strategy: strategy.MultiSchema}
	accounts, err := s.Tenants(ctx)
	if err != nil {
		return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report: %w", err)
	}
	for chunk := range slices.Chunk(accounts, perStatement) {
		rows, err := s.countOpenSubtasks(ctx, chunk)
		if schemaFault(err) {
			for _, a := range chunk {
				row, err := s.countOpenSubtasks(ctx, []models.Account{a})
				switch {
				case schemaFault(err):
					out.Unreachable = append(out.Unreachable, strategy.UnreachableTenant{
						Slug: a.Slug,
						Reason: fmt.Sprintf("its schema %s is missing or incomplete, or not granted to the reader (run `tenancy migrate`; `tenancy check` says more)",
							SchemaOf(a.ID)),
						Err: fmt.Errorf("tenant %s: read schema %s: %w", a.Slug, SchemaOf(a.ID), err),
					})
				case err != nil:
					return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report, tenant %s: %w", a.Slug, pg.Classify(err))
				default:
					out.Rows = append(out.Rows, row...)
				}
			}
			continue
		}
		if err != nil {
			return strategy.OpenSubtasksReport{}, fmt.Errorf("open subtasks report, tenants %s to %s: %w", chunk[0].Slug, chunk[len(chunk)-1].Slug, pg.Classify(err))
		}
		out.Rows = append(out.Rows, rows...)
	}
	strategy.SortOpenSubtasks(out.Rows)
	out.Elapsed = time.Since(start)
	return out, nil
}

// countOpenSubtasks reads the open subtasks of accounts' schemas in one
// UNION ALL statement, as the reader, and returns a row per account.
func (s *Server) countOpenSubtasks(ctx context.Context, accounts []models.Account) ([]strategy.TenantOpenSubtasks, error) {
	byID := make(map[int64]models.Account, len(accounts))
	branches := make([]string, len(accounts))
	for i, a := range accounts {
		byID[int64(a.ID)] = a
		branches[i] = fmt.Sprintf(openSubtasksBranch, int64(a.ID), pg.QuoteIdent(SchemaOf(a.ID)))
	}
	query := strings.Join(branches, "\nUNION ALL\n")
	out := make([]strategy.TenantOpenSubtasks, 0, len(accounts))
	err := s.readerTurns.Do(ctx, func() error {
		rows, err := s.pools[1].QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var r strategy.TenantOpenSubtasks
			if err := rows.Scan(&id, &r.OpenSubtasks, &r.ProjectsWithOpenSubtasks); err != nil {
				return err
			}
			a, ok := byID[id]
			if !ok { // cannot be: each branch states its own account
				return fmt.Errorf("the report read account %s, which it did not ask for", strconv.FormatInt(id, 10))
			}
			delete(byID, id)
			r.Slug, r.Name = a.Slug, a.Name
			out = append(out, r)
		}
		return rows.Err()
	})
	if err == nil && len(byID) > 0 {
		err = fmt.Errorf("the report read %d of %d tenant schemas", len(out), len(accounts))
	}
	return out, err
}

// schemaFault reports whether err is one tenant schema's fault: missing
// (3F000), missing a table (42P01), or not granted to the reader (42501).
func schemaFault(err error) bool {
	return pg.IsPgError(err, "3F000") || pg.IsPgError(err, "42P01") ||
		(pg.IsPgError(err, "42501") && !pg.IsRLSViolation(err))
}
