package writes

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// A write's transaction spans two pipelines, so a connection goes back
// to the pool between them only through inTx: whatever way the
// conversation ends, the connection must come back outside any
// transaction, with no tenant bound to it, or the next request on it
// would run inside this tenant's transaction.
func TestConversationsLeaveNoTransaction(t *testing.T) {
	ctx, c := connect(t)
	bind := []Statement{{SQL: "SELECT set_config('app.tenant_id', $1, true)", Args: []any{"7"}}}
	read := Statement{SQL: "SELECT current_setting('app.tenant_id', true)"}
	opened := func(c *pgx.Conn) error {
		return send(ctx, c, begin(bind, read), func(i int, rows pgx.Rows) error {
			if i != len(bind)+1 {
				return nil
			}
			var v string
			if !rows.Next() {
				return errors.New("no row")
			}
			if err := rows.Scan(&v); err != nil {
				return err
			}
			if v != "7" {
				return errors.New("the tenant was not bound within the transaction: " + v)
			}
			return nil
		})
	}
	tests := []struct {
		name string
		fn   func(c *pgx.Conn) error
		want error // nil: any error but nil
	}{
		{"stale after the read", func(c *pgx.Conn) error {
			if err := opened(c); err != nil {
				return err
			}
			return strategy.ErrStale
		}, strategy.ErrStale},
		{"the write fails", func(c *pgx.Conn) error {
			if err := opened(c); err != nil {
				return err
			}
			return send(ctx, c, []Statement{{SQL: "SELECT 1/0"}, commit}, nil)
		}, nil},
		{"the read fails", func(c *pgx.Conn) error {
			return send(ctx, c, begin(bind, Statement{SQL: "SELECT 1/0"}), nil)
		}, nil},
		{"no row written", func(c *pgx.Conn) error {
			if err := opened(c); err != nil {
				return err
			}
			return writeOneRow(ctx, c, Statement{SQL: "SELECT 1 WHERE false"})
		}, strategy.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := inTx(ctx, c, func() error { return tt.fn(c) })
			switch {
			case err == nil:
				t.Fatal("no error")
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if s := c.PgConn().TxStatus(); s != 'I' {
				t.Fatalf("the connection came back in a transaction (status %q)", s)
			}
			var v string
			if err := c.QueryRow(ctx, "SELECT coalesce(current_setting('app.tenant_id', true), '')").Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != "" {
				t.Fatalf("app.tenant_id is still %q after the conversation", v)
			}
		})
	}
}

// A committed conversation is a transaction like any other: the binding
// ends with it.
func TestCommittedConversationUnbinds(t *testing.T) {
	ctx, c := connect(t)
	bind := []Statement{{SQL: "SELECT set_config('app.tenant_id', $1, true)", Args: []any{"7"}}}
	err := inTx(ctx, c, func() error {
		if err := send(ctx, c, begin(bind, Statement{SQL: "SELECT 1"}), nil); err != nil {
			return err
		}
		if s := c.PgConn().TxStatus(); s != 'T' {
			t.Errorf("no transaction open between the pipelines (status %q)", s)
		}
		return writeOneRow(ctx, c, Statement{SQL: "SELECT 1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := c.QueryRow(ctx, "SELECT coalesce(current_setting('app.tenant_id', true), '')").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "" {
		t.Fatalf("app.tenant_id is still %q after COMMIT", v)
	}
}

// connect is a connection of the admin role to the maintenance database
// (the conversations here need no table), closed at the test's end.
func connect(t *testing.T) (context.Context, *pgx.Conn) {
	t.Helper()
	pgtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, err := pgx.Connect(ctx, pgtest.DSN("", "", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return ctx, c
}
