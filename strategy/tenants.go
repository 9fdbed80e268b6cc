package strategy

import (
	"context"
	"errors"
	"time"

	"tenancy/models"
)

// ErrTenantExists: a tenant with that slug exists already.
var ErrTenantExists = errors.New("tenant exists")

// TenantEntry is one tenant as its strategy's directory lists it: in
// multidb a row of the base database's directory (the server and database
// that hold the tenant), in multischema and singleschema its account.
type TenantEntry struct {
	ID   models.TenantID `json:"id"`
	Slug string          `json:"slug"`
	Name string          `json:"name"`
	// Location says, for people, where the tenant's rows are.
	Location string `json:"location"`
	// Host and Port are multidb's server of the tenant's database, empty
	// and 0 for the deployment's own (PGHOST, PGPORT); Database is the
	// database (multidb) or schema (multischema) that holds the tenant.
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Database string `json:"database,omitempty"`
	// Holds lists everything DeleteTenant removes with the tenant.
	Holds     []string  `json:"holds"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// TenantSpec is a tenant to create with Directory.AddTenant.
type TenantSpec struct {
	Slug, Name string
	// Host and Port (multidb only) put the tenant's database on another
	// PostgreSQL server than the deployment's own; empty and 0 mean PGHOST
	// and PGPORT. The admin role must be able to connect there.
	Host string
	Port int
}

// Directory is which tenants exist and where each is, with the admin's
// lifecycle operations. After setup it is the truth for every command and
// for the server (which sees a tenant added or deleted within a few
// seconds, without a restart).
type Directory interface {
	// ListTenants lists every tenant, by slug.
	ListTenants(ctx context.Context) ([]TenantEntry, error)
	// LookUpTenant returns slug's entry, or ErrTenantNotFound.
	LookUpTenant(ctx context.Context, slug string) (TenantEntry, error)
	// AddTenant creates an empty tenant, migrated and granted, with its
	// account, and lists it: all of it or nothing. ErrTenantExists, with
	// nothing written, when the slug is taken.
	AddTenant(ctx context.Context, spec TenantSpec) (TenantEntry, error)
	// DeleteTenant removes the tenant: every row, schema, role or
	// database that is its own (TenantEntry.Holds), and nothing else.
	// Running it again after a failure finishes the job.
	DeleteTenant(ctx context.Context, slug string) (TenantEntry, error)
}
