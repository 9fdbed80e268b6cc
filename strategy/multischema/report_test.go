package multischema

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/strategytest"
)

// TestReportAcrossChunksAndBrokenSchemas reads the report a schema, two
// schemas and every schema a statement, with every schema whole and with
// tenant-1's dropped or not granted to the reader: every tenant whose
// schema can be read is reported as its data says, whatever chunk it
// fell in, and tenant-1, when broken, is listed as unreachable with a
// reason that says what to do, instead of failing the report.
func TestReportAcrossChunksAndBrokenSchemas(t *testing.T) {
	t.Parallel()
	breaks := []struct {
		name  string
		stmts func(opts strategy.Options, schema string) []string
	}{
		{"whole", nil},
		{"schema dropped", func(_ strategy.Options, schema string) []string {
			return []string{"DROP SCHEMA " + schema + " CASCADE"}
		}},
		{"reader not granted", func(o strategy.Options, schema string) []string {
			return []string{"REVOKE USAGE ON SCHEMA " + schema + " FROM " + pg.QuoteIdent(o.ReaderUser)}
		}},
		{"table missing", func(_ strategy.Options, schema string) []string {
			return []string{"ALTER TABLE " + schema + ".tasks RENAME TO tasks_old"}
		}},
	}
	for _, br := range breaks {
		t.Run(br.name, func(t *testing.T) {
			t.Parallel()
			opts, admin, st := strategytest.Deploy(t, Harness())
			s := st.(*Server)
			tenants := []*strategy.TenantData{
				strategytest.ReportTenant("tenant-0", 2, []int{0, 1}, []int{1}),
				strategytest.ReportTenant("tenant-1", 2, []int{0, 0, 0}, nil),
				strategytest.ReportTenant("tenant-2", 1, []int{0}, []int{0}),
			}
			for _, d := range tenants {
				if err := admin.LoadTenant(context.Background(), d, true); err != nil {
					t.Fatalf("LoadTenant(%s): %v", d.Account.Slug, err)
				}
			}
			want := strategytest.ExpectedReport(tenants...)
			var unreachable []string
			if br.stmts != nil {
				schema := pg.QuoteIdent(SchemaOf(tenants[1].Account.ID))
				strategytest.MustExec(t, pgtest.Admin(t, opts.Database), br.stmts(opts, schema)...)
				want = strategytest.ExpectedReport(tenants[0], tenants[2])
				unreachable = []string{"tenant-1"}
			}
			for _, perStatement := range []int{1, 2, reportChunk} {
				rep, err := s.reportOpenSubtasks(models.NewContextForAllTenants(context.Background()), strategy.ReportOptions{}, perStatement)
				if err != nil {
					t.Fatalf("%d schemas a statement: %v", perStatement, err)
				}
				if !reflect.DeepEqual(rep.Rows, want) {
					t.Errorf("%d schemas a statement: rows\n%swant\n%s", perStatement, strategytest.FormatReport(rep.Rows), strategytest.FormatReport(want))
				}
				var got []string
				for _, u := range rep.Unreachable {
					got = append(got, u.Slug)
					if !strings.Contains(u.Reason, "run `tenancy migrate`") || u.Err == nil || strings.Contains(u.Reason, "SQLSTATE") {
						t.Errorf("%d schemas a statement: %s unreachable, reason %q, err %v; want one saying what to run, and the error", perStatement, u.Slug, u.Reason, u.Err)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(unreachable) {
					t.Errorf("%d schemas a statement: unreachable %v, want %v", perStatement, got, unreachable)
				}
			}
		})
	}
}
