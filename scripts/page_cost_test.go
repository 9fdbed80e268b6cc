package scripts

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"tenancy/seed"
	"tenancy/strategy"
	"tenancy/strategy/singleschema"
	"tenancy/strategy/strategytest"
)

// TestPageCostRuns runs page-cost.sh briefly against a seeded singleschema
// deployment on plain PostgreSQL: every row it prints is a rate above
// zero, so the statements it copies from the server still run against
// today's schema (a renamed column makes pgbench fail and this go red).
func TestPageCostRuns(t *testing.T) {
	opts := strategytest.Options(t, strategy.SingleSchema)
	opts.AppPassword = "page-cost-app-password"
	ctx := context.Background()
	admin, err := singleschema.NewAdmin(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Setup(ctx, nil); err != nil {
		t.Fatalf("setup: %v", err)
	}
	so := seed.DefaultOptions()
	so.Accounts = 3
	seeder, err := seed.NewSeeder(admin, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seeder.Run(ctx, so); err != nil {
		t.Fatalf("seed: %v", err)
	}

	cmd := exec.Command("bash", "page-cost.sh")
	cmd.Env = append(os.Environ(),
		"PGHOST="+opts.Host, "PGPORT="+strconv.Itoa(opts.Port), "PGUSER="+opts.AdminUser,
		"PGPASSWORD="+opts.AdminPassword, "PGDATABASE="+opts.Database,
		"APP_DB_USER="+opts.AppUser, "APP_DB_PASSWORD="+opts.AppPassword,
		"DURATION=1", "TENANTS=3", "CLIENTS=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("page-cost.sh: %v\n%s", err, out)
	}
	tests := []string{
		"page read as the server sends it",
		"the page statement alone",
		"subtasks only, one table",
		"subtasks only, as the app role in a block",
		"subtasks \\+ tasks \\(",
		"subtasks \\+ tasks \\+ projects",
	}
	for _, label := range tests {
		m := regexp.MustCompile(label + `.*?\s(\d+)\n`).FindSubmatch(out)
		if m == nil {
			t.Errorf("no rate for %q in:\n%s", label, out)
			continue
		}
		if n, _ := strconv.Atoi(string(m[1])); n <= 0 {
			t.Errorf("%q: %d per second, want more than 0", label, n)
		}
	}
}
