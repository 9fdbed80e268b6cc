package pg

import (
	"context"
	"errors"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// Failures to connect are "unavailable" (503, try again) only when trying
// again can help: not when the server refused the login.
func TestClassifyConnectFailures(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	tests := []struct {
		name        string
		dsn         string
		unavailable bool
	}{
		{"no such role", pgtest.DSN(pgtest.UniqueName("tt_nobody"), "", "postgres"), false},
		{"no such database", pgtest.DSN("", "", pgtest.UniqueName("tt_missing")), true},
		{"nothing listening", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=2", true},
	}
	for _, tt := range tests {
		pool, err := OpenPool(tt.dsn, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		err = Classify(pool.PingContext(context.Background()))
		pool.Close()
		if err == nil {
			t.Errorf("%s: connected", tt.name)
			continue
		}
		if got := errors.Is(err, strategy.ErrUnavailable); got != tt.unavailable {
			t.Errorf("%s: unavailable = %v, want %v (err %v)", tt.name, got, tt.unavailable, err)
		}
	}
}
