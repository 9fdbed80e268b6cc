package pg

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

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

// A Citus read that raced a shard split is "unavailable" (503, try again),
// and told apart from other internal errors, which are not.
func TestShardReplaced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"the split's old shard", &pgconn.PgError{Code: "XX000", Message: "could not find valid entry for shard 102041"}, true},
		{"wrapped, as the page read returns it", fmt.Errorf("tenant tenant-3: %w", errors.Join(&pgconn.PgError{Code: "XX000", Message: "could not find valid entry for shard 7"}, nil)), true},
		{"another internal error", &pgconn.PgError{Code: "XX000", Message: "cache lookup failed for relation 1"}, false},
		{"the same words with another code", &pgconn.PgError{Code: "42P01", Message: "could not find valid entry for shard 7"}, false},
		{"not from the server", errors.New("could not find valid entry for shard 7"), false},
	}
	for _, tt := range tests {
		if got := ShardReplaced(tt.err); got != tt.want {
			t.Errorf("%s: ShardReplaced(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
		if got := errors.Is(Classify(tt.err), strategy.ErrUnavailable); got != tt.want {
			t.Errorf("%s: Classify(%v) unavailable = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// Only a shard error in a transaction known not to have committed is tried
// again: not one from, or after, a COMMIT (unmarked), and not another
// error, marked or not.
func TestAgainAfterSplit(t *testing.T) {
	t.Parallel()
	split := &pgconn.PgError{Code: "XX000", Message: "could not find valid entry for shard 7"}
	other := &pgconn.PgError{Code: "23505", Message: "duplicate key value violates unique constraint"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"before the COMMIT", NotCommitted(split), true},
		{"before the COMMIT, wrapped and joined", fmt.Errorf("tenant t: %w", NotCommitted(errors.Join(fmt.Errorf("read: %w", split), nil))), true},
		{"from the COMMIT", fmt.Errorf("commit: %w", split), false},
		{"another error before the COMMIT", NotCommitted(other), false},
		{"another error marked, the shard error beside it unmarked", errors.Join(NotCommitted(other), split), false},
		{"none", NotCommitted(nil), false},
	}
	for _, tt := range tests {
		if got := AgainAfterSplit(tt.err); got != tt.want {
			t.Errorf("%s: AgainAfterSplit(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
	tries := 0
	err := OnceMoreAfterSplit(func() error { tries++; return NotCommitted(split) })
	if tries != 2 || !ShardReplaced(err) {
		t.Errorf("OnceMoreAfterSplit over a split every time: %d tries, err %v; want 2 and the shard error", tries, err)
	}
}
