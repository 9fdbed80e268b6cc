package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
	"tenancy/strategy"
)

// TestLoadcheckCommand runs `tenancy loadcheck` as a user would, against
// `tenancy serve` on a loopback port: green over the seeded tenants, each
// signed in as one of its seeded users; red (with a hint) when asked for
// more tenants than were seeded, or when the users cannot sign in.
func TestLoadcheckCommand(t *testing.T) {
	t.Parallel()
	env := pgtest.Env(t, strategy.SingleSchema, nil)
	for _, args := range [][]string{{"setup"}, {"seed", "--accounts", "2", "--max-projects", "3"}} {
		if out, err := runCmd(t, env, args...); err != nil {
			t.Fatalf("tenancy %v: %v\n%s", args, err, out)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, pgtest.Getenv(env), &stdout, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	addr := waitForAddr(t, &stdout, done)
	waitHealthy(t, addr)

	tests := []struct {
		args    []string
		wantErr string // "" for success
		want    []string
	}{
		{[]string{"--tenants", "2", "--requests", "400", "--concurrency", "4"}, "",
			[]string{"requests      400 (400 ok, 0 failed)", "leaked rows   0", "loadcheck: ok:"}},
		{[]string{"--tenants", "3", "--requests", "300", "--concurrency", "4"}, "on tenant-2: 404 Not Found: There is no such tenant here.", nil},
		{[]string{"--tenants", "2", "--data-seed", "5"}, "--data-seed, --min-users and --max-users are the --seed", nil},
		{[]string{"--url", "http://192.0.2.1:8080"}, "loopback", nil},
		{[]string{"--requests", "0", "--concurrency", "0"}, "--concurrency 0", nil},
	}
	for _, tt := range tests {
		args := append([]string{"loadcheck", "--url", "http://" + addr}, tt.args...)
		out, err := runCmd(t, env, args...)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("tenancy %v: %v\n%s", args, err, out)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("tenancy %v: err = %v, want one containing %q\n%s", args, err, tt.wantErr, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("tenancy %v output lacks %q:\n%s", args, w, out)
			}
		}
	}
}
