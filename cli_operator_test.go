package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"tenancy/configs"
	"tenancy/internal/password"
	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/strategies"
)

// runOperatorCmd is `tenancy operator args...` with stdin.
func runOperatorCmd(t *testing.T, env map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runOperator(context.Background(), args, pgtest.Getenv(env), strings.NewReader(stdin), &out, &out)
	return out.String(), err
}

func TestOperatorSubcommandsHaveHelp(t *testing.T) {
	for _, c := range operatorCommands() {
		out, err := runOperatorCmd(t, map[string]string{}, "", c.name, "--help")
		if err != nil || !strings.Contains(out, "Usage: tenancy operator "+c.name) || !strings.Contains(out, "STRATEGY") {
			t.Errorf("tenancy operator %s --help: err %v, output:\n%s", c.name, err, out)
		}
	}
	if _, err := runOperatorCmd(t, map[string]string{}, "", "frobnicate"); exitCode(err) != 2 {
		t.Errorf("tenancy operator frobnicate: %v (exit %d), want a usage error", err, exitCode(err))
	}
	// Not a terminal, and no --password-stdin: refused before any
	// database is opened.
	if _, err := runOperatorCmd(t, map[string]string{}, "pw\n", "create", "ops@example.com"); exitCode(err) != 2 || !strings.Contains(err.Error(), "--password-stdin") {
		t.Errorf("operator create without a terminal: %v, want a usage error naming --password-stdin", err)
	}
}

// TestOperatorLifecycle: create (the password from stdin, stored as a
// hash that verifies it), refusals that write nothing (a weak password, an
// email taken in another case), list, delete.
func TestOperatorLifecycle(t *testing.T) {
	env := pgtest.Env(t, strategy.SingleSchema, nil)
	if out, err := runCmd(t, env, "setup"); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	const email, pw = "ops@example.com", "correct horse battery staple"
	for _, tc := range []struct {
		name, stdin string
		args        []string
		ok          bool
		says        string
	}{
		{"create", pw + "\n", []string{"create", email, "--password-stdin"}, true, "operator " + email + ": created"},
		{"taken, in another case", pw + "\n", []string{"create", "OPS@example.com", "--password-stdin"}, false, "operator exists"},
		{"empty password", "\n", []string{"create", "b@example.com", "--password-stdin"}, false, "empty"},
		{"short password", "short\n", []string{"create", "b@example.com", "--password-stdin"}, false, "at least 12"},
		{"not an email", pw + "\n", []string{"create", "nobody", "--password-stdin"}, false, "not an email"},
		{"list", "", []string{"list"}, true, "1 operators"},
	} {
		out, err := runOperatorCmd(t, env, tc.stdin, tc.args...)
		if (err == nil) != tc.ok || !strings.Contains(out+errString(err), tc.says) {
			t.Errorf("%s: tenancy operator %q = %v\n%s\nwant ok %v, saying %q", tc.name, tc.args, err, out, tc.ok, tc.says)
		}
	}
	out, err := runOperatorCmd(t, env, "", "list", "--json")
	var listed []models.Operator
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].Email != email || strings.Contains(out, "pbkdf2") {
		t.Errorf("operator list --json = %v\n%s\nwant %s alone, no hash", err, out, email)
	}

	cfg, err := configs.Load(pgtest.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	s, err := strategies.Open(context.Background(), cfg.Strategy)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o, err := s.OperatorByEmail(context.Background(), email)
	if ok, verr := password.Verify(pw, o.Password); err != nil || !ok || verr != nil {
		t.Errorf("the stored hash of %s does not verify its password: %v, %v, %v", email, err, ok, verr)
	}

	if out, err := runOperatorCmd(t, env, "", "delete", email); err != nil {
		t.Errorf("operator delete: %v\n%s", err, out)
	}
	if _, err := s.OperatorByEmail(context.Background(), email); !errors.Is(err, strategy.ErrOperatorNotFound) {
		t.Errorf("OperatorByEmail after delete: %v, want ErrOperatorNotFound", err)
	}
	if _, err := runOperatorCmd(t, env, "", "delete", email); err == nil || !strings.Contains(err.Error(), "operator not found") {
		t.Errorf("operator delete twice: %v, want operator not found", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
