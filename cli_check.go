package main

import (
	"context"
	"fmt"
	"io"

	"tenancy/configs"
	"tenancy/strategy/strategies"
)

// runCheck is `tenancy check`: it inspects the deployment as the admin and
// fails when it finds anything, so it can gate a deploy or run in CI.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", `Inspects the deployment as the admin role (PGUSER) and lists each finding:
the app role is a superuser, has BYPASSRLS, is a member of a role that does, or
owns a tenanted table; the all-tenants role could write or is not read-only; a
tenanted table lacks row-level security (ENABLE, FORCE) or a policy; a policy
lets rows through when no tenant is set, to another tenant, or lets a row be
written into another tenant (probed for real, as the app role, in a
transaction that is rolled back); migrations are pending; a database or role
is missing. Exits 0 when there is nothing to report, 1 otherwise.`)
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	cfg, err := configs.Load(getenv)
	if err != nil {
		return err
	}
	o := cfg.Strategy
	o.Logger = newLogger(stderr)
	fmt.Fprintf(stdout, "check %s on %s:%d (database %s, app role %s) as %s\n", o.Strategy, o.Host, o.Port, o.Database, o.AppUser, o.AdminUser)
	rep, err := strategies.Check(ctx, o)
	for _, f := range rep.Findings {
		mark := ""
		if f.Kind.BreaksIsolation() {
			mark = " (breaks isolation)"
		}
		fmt.Fprintf(stdout, "FINDING [%s]%s %s\n", f.Kind, mark, f)
	}
	if err != nil {
		return fmt.Errorf("check: could not finish: %w", err)
	}
	if len(rep.Findings) > 0 {
		return fmt.Errorf("check: %d findings, %d of which break tenant isolation; fix each as it says and run `tenancy check` again",
			len(rep.Findings), rep.IsolationFindings())
	}
	for _, c := range rep.Checked {
		fmt.Fprintf(stdout, "  ok: %s\n", c)
	}
	fmt.Fprintln(stdout, "check: no findings")
	return nil
}
