package strategy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DatabaseReport is what setup or migrate did to one database, or to one
// tenant's schema.
type DatabaseReport struct {
	// Tenant is the tenant's slug, where the database or schema holds one
	// tenant; Database names the database, or the schema, migrated.
	Tenant   string
	Database string
	Created  bool
	From, To int64    // schema version before and after
	Applied  []string // migration files applied
	Err      error
	// Where the time went: creating the database, and migrating it
	// (including grants).
	CreateTime, MigrateTime time.Duration
	// Skipped, when set, says why the database was not attempted (a fleet
	// migration stopped at an earlier failure); nothing else is set then.
	Skipped string
	// Repaired lists what was found missing after the migrations, where
	// it should have been made already, and was made then (singleschema
	// on Citus: the INSERT (id) of shards that Citus created without it).
	Repaired []string
}

// Name is the tenant, and where it lives, or just the database when it
// holds no one tenant.
func (d DatabaseReport) Name() string {
	if d.Tenant == "" {
		return d.Database
	}
	return d.Tenant + " (" + d.Database + ")"
}

// Status is one of "applied", "current", "failed" or "not attempted".
func (d DatabaseReport) Status() string {
	switch {
	case d.Skipped != "":
		return "not attempted"
	case d.Err != nil:
		return "failed"
	case len(d.Applied) > 0:
		return "applied"
	default:
		return "current"
	}
}

func (d DatabaseReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", d.Name())
	if d.Skipped != "" {
		b.WriteString(d.Skipped)
		return b.String()
	}
	if d.Created {
		b.WriteString("created, ")
	}
	switch {
	case d.Err != nil:
		fmt.Fprintf(&b, "FAILED at version %d: %v", d.To, d.Err)
	case len(d.Applied) == 0:
		fmt.Fprintf(&b, "up to date at version %d", d.To)
	default:
		fmt.Fprintf(&b, "migrated %d -> %d (%s)", d.From, d.To, strings.Join(d.Applied, ", "))
	}
	if len(d.Repaired) > 0 {
		fmt.Fprintf(&b, "; made what was missing: %s", strings.Join(d.Repaired, "; "))
	}
	return b.String()
}

// Report lists what happened to each database, failures included, so one
// failing tenant does not hide the state of the others.
type Report struct {
	Databases []DatabaseReport
	Elapsed   time.Duration
}

// Summary says how many databases were created and migrated and where the
// time went; creation and migration times are summed over databases, which
// are set up several at a time, so they can add up to more than Elapsed.
func (r Report) Summary() string {
	var created, migrated int
	var create, mig time.Duration
	for _, d := range r.Databases {
		if d.Created {
			created++
		}
		if len(d.Applied) > 0 {
			migrated++
		}
		create += d.CreateTime
		mig += d.MigrateTime
	}
	return fmt.Sprintf("%d databases (%d created, %d migrated) in %s; creating took %s, migrating and granting %s, summed over databases",
		len(r.Databases), created, migrated, r.Elapsed.Round(time.Millisecond), create.Round(time.Millisecond), mig.Round(time.Millisecond))
}

// Err is nil when every database succeeded, and otherwise names each
// failed database.
func (r Report) Err() error {
	var errs []error
	skipped := 0
	for _, d := range r.Databases {
		switch {
		case d.Err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", d.Name(), d.Err))
		case d.Skipped != "":
			skipped++
		}
	}
	if len(errs) == 0 && skipped == 0 {
		return nil
	}
	if skipped > 0 {
		errs = append(errs, fmt.Errorf("%d not attempted after the failure; fix the cause and run it again to finish them", skipped))
	}
	return fmt.Errorf("%d of %d databases failed: %w", len(r.Databases)-skipped-countOK(r.Databases), len(r.Databases), errors.Join(errs...))
}

func countOK(ds []DatabaseReport) int {
	n := 0
	for _, d := range ds {
		if d.Err == nil && d.Skipped == "" {
			n++
		}
	}
	return n
}
