package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"tenancy/configs"
	"tenancy/internal/loadcheck"
	"tenancy/seed"
	"tenancy/strategy"
)

func runLoadcheck(ctx context.Context, args []string, getenv func(string) string, stdout, _ io.Writer) error {
	fs := newFlagSet("loadcheck", "Signs in one seeded user per tenant, then fires concurrent requests for randomly\n"+
		"mixed tenants at a running server (Host tenant-N.<base domain>, JSON, random\n"+
		"pages, each with its tenant's session) and checks that every row served belongs\n"+
		"to the tenant of its request. Exits non-zero on any leaked row, and on failed\n"+
		"requests. Loopback addresses only. The users are those `tenancy seed` made: give\n"+
		"the same --data-seed, --min-users and --max-users if it was given other ones.")
	url := fs.String("url", "http://127.0.0.1:8080", "where the server listens (loopback only)")
	baseDomain := fs.String("base-domain", "", "the server's BASE_DOMAIN (default $BASE_DOMAIN, else "+configs.DefaultBaseDomain+")")
	tenants := fs.Int("tenants", configs.DefaultTenantCount, "mix tenant-0 to tenant-<N-1>; each must exist")
	requests := fs.Int("requests", 10000, "requests to send")
	concurrency := fs.Int("concurrency", 16, "requests in flight at once")
	loadSeed := fs.Uint64("seed", 1, "random seed for the choice of tenants and pages")
	timeout := fs.Duration("timeout", 30*time.Second, "limit for one request")
	data := seed.DefaultOptions()
	fs.Int64Var(&data.Seed, "data-seed", data.Seed, "the --seed the tenants were seeded with, which decides their users")
	fs.IntVar(&data.MinUsers, "min-users", data.MinUsers, "the --min-users the tenants were seeded with")
	fs.IntVar(&data.MaxUsers, "max-users", data.MaxUsers, "the --max-users the tenants were seeded with")
	password := fs.String("password", seed.SamplePassword, "the seeded users' password")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	if *baseDomain == "" {
		*baseDomain = strings.ToLower(strings.TrimSpace(getenv("BASE_DOMAIN")))
		if *baseDomain == "" {
			*baseDomain = configs.DefaultBaseDomain
		}
	}
	var problems []error
	if *tenants < 1 || *tenants > 100000 {
		problems = append(problems, fmt.Errorf("--tenants %d: want 1 to 100000", *tenants))
	}
	if *requests < 1 {
		problems = append(problems, fmt.Errorf("--requests %d: want at least 1", *requests))
	}
	if *concurrency < 1 || *concurrency > 1000 {
		problems = append(problems, fmt.Errorf("--concurrency %d: want 1 to 1000", *concurrency))
	}
	if *timeout <= 0 {
		problems = append(problems, fmt.Errorf("--timeout %s: want a positive duration such as 30s", *timeout))
	}
	if _, err := loadcheck.CheckURL(*url); err != nil {
		problems = append(problems, fmt.Errorf("--url: %w", err))
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("loadcheck: %w", err)
	}
	slugs, users, nobody := signInUsers(data, *tenants)
	if len(nobody) > 0 {
		fmt.Fprintf(stdout, "loadcheck: %d tenants have no active user to sign in as (seed makes one user in ten inactive), so their pages are not asked for: %s\n",
			len(nobody), strings.Join(nobody, ", "))
	}
	if len(slugs) == 0 {
		return fmt.Errorf("loadcheck: none of the %d tenants has an active user to sign in as; were they seeded with other --seed, --min-users, --max-users than loadcheck's --data-seed, --min-users, --max-users?", *tenants)
	}
	fmt.Fprintf(stdout, "loadcheck: signing in one user on each of %d tenants\n", len(slugs))
	sessions, err := loadcheck.SignIn(ctx, loadcheck.SignInOptions{
		URL: *url, BaseDomain: *baseDomain, Users: users, Password: *password, Concurrency: min(*concurrency, 4),
	})
	if err != nil {
		return fmt.Errorf("loadcheck: %w; check that the server runs at %s with BASE_DOMAIN=%s, that the tenants are seeded (`tenancy seed --accounts %d`), and that loadcheck's --data-seed, --min-users and --max-users are the --seed, --min-users and --max-users they were seeded with", err, *url, *baseDomain, *tenants)
	}

	fmt.Fprintf(stdout, "loadcheck: %d requests for %d tenants (tenant-0 to tenant-%d) at %s, %d at a time\n",
		*requests, len(slugs), *tenants-1, *url, *concurrency)
	res, err := loadcheck.Run(ctx, loadcheck.Options{
		URL: *url, BaseDomain: *baseDomain, Tenants: slugs, Sessions: sessions,
		Requests: *requests, Concurrency: *concurrency, Seed: *loadSeed, RequestTimeout: *timeout,
	})
	if err != nil {
		return fmt.Errorf("loadcheck: %w", err)
	}
	res.Report(stdout)
	switch {
	case res.LeakedRows > 0:
		return fmt.Errorf("loadcheck: %d rows were served to the wrong tenant: tenant isolation is broken (see the leaks above)", res.LeakedRows)
	case ctx.Err() != nil:
		return fmt.Errorf("loadcheck: interrupted after %d requests", res.Requests)
	case res.OK == 0:
		return fmt.Errorf("loadcheck: no request succeeded, so nothing was checked; is the server running at %s with BASE_DOMAIN=%s, and are the tenants seeded (`tenancy seed --accounts %d`)?", *url, *baseDomain, *tenants)
	case res.RowsChecked == 0:
		return fmt.Errorf("loadcheck: every answer was an empty page, so no row was checked; seed some data (`tenancy seed --accounts %d`) and run it again", *tenants)
	case res.Failed > 0:
		return fmt.Errorf("loadcheck: no leaked rows, but %d of %d requests failed (see the answers above); a 404 for a tenant means fewer tenants are seeded than --tenants, a 503 that the server cannot reach its database", res.Failed, res.Requests)
	}
	if res.Mismatches > 0 {
		fmt.Fprintf(stdout, "loadcheck: note: %d pages disagreed with the tenant's first answer (was data being written during the run?)\n", res.Mismatches)
	}
	fmt.Fprintf(stdout, "loadcheck: ok: %d rows checked, none leaked\n", res.RowsChecked)
	return nil
}

// signInUsers lists tenant-0 to tenant-<n-1> that have an active seeded
// user, with that user's email, and those that have none.
func signInUsers(data seed.Options, n int) (slugs []string, users map[string]string, nobody []string) {
	users = make(map[string]string, n)
	for i := range n {
		slug := strategy.Slug(i)
		email, ok := seed.SignInEmail(data, i)
		if !ok {
			nobody = append(nobody, slug)
			continue
		}
		slugs = append(slugs, slug)
		users[slug] = email
	}
	return slugs, users, nobody
}
