package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"tenancy/models"
	"tenancy/strategy"
)

// ExportLayout says where one tenant's rows are, for ExportTenant.
type ExportLayout struct {
	// Schema names the schema of the tenant's tables (the account is
	// always in public.accounts); nil: public.
	Schema func(id models.TenantID) string
	// Shared: the tables hold every tenant's rows, so each is read where
	// account_id is the tenant's (singleschema). Otherwise the tables hold
	// this tenant alone (a database or schema of its own).
	Shared bool
}

// ExportTenant implements strategy.TenantExporter on pool: one READ ONLY,
// REPEATABLE READ transaction, so every COPY reads the snapshot the
// account was found in, and rows committed meanwhile are in no table of
// the export rather than in some. The session's TimeZone and DateStyle
// are fixed for the transaction, so the text of a timestamp does not
// depend on the server's configuration.
func ExportTenant(ctx context.Context, pool *sql.DB, layout ExportLayout, slug string, table func(name string) (io.Writer, error)) (models.Account, error) {
	var acct models.Account
	err := WithPgxConn(ctx, pool, func(c *pgx.Conn) error {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only: nothing to keep
		var b pgx.Batch
		b.Queue("SET LOCAL TimeZone TO 'UTC'")
		b.Queue("SET LOCAL DateStyle TO 'ISO, YMD'")
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		var id int64
		err = tx.QueryRow(ctx, "SELECT id, slug, name FROM public.accounts WHERE slug = $1", slug).Scan(&id, &acct.Slug, &acct.Name)
		if errors.Is(err, pgx.ErrNoRows) {
			return strategy.ErrTenantNotFound
		}
		if err != nil {
			return fmt.Errorf("find account: %w", err)
		}
		acct.ID = models.TenantID(id)
		for i, name := range strategy.DataTables() {
			w, err := table(name)
			if err != nil {
				return fmt.Errorf("export %s: %w", name, err)
			}
			if _, err := tx.Conn().PgConn().CopyTo(ctx, w, layout.copyStatement(name, strategy.ExportColumns()[i], acct.ID)); err != nil {
				return fmt.Errorf("export %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return models.Account{}, Classify(err)
	}
	return acct, nil
}

// copyStatement reads one table's rows of the tenant with the account id
// id. COPY takes no bind parameters; the id is a number from the
// database, written out in decimal.
func (l ExportLayout) copyStatement(table string, columns []string, id models.TenantID) string {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = QuoteIdent(c)
	}
	acct := strconv.FormatInt(int64(id), 10)
	from, where := "public."+QuoteIdent(table), ""
	switch {
	case table == "accounts":
		where = " WHERE id = " + acct
	case l.Shared:
		where = " WHERE account_id = " + acct
	}
	if table != "accounts" && l.Schema != nil {
		from = QuoteIdent(l.Schema(id)) + "." + QuoteIdent(table)
	}
	return fmt.Sprintf("COPY (SELECT %s FROM %s%s ORDER BY id) TO STDOUT", strings.Join(quoted, ", "), from, where)
}
