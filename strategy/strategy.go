// Package strategy is what callers of a multi-tenancy strategy see: the
// Strategy (the web server's side) and Admin (setup, migrate, seed)
// interfaces, their errors, options and the types they exchange. The
// implementations live beneath it, one package each, as drivers do beneath
// database/sql:
//
//   - strategy/multidb: one database per tenant, a pool per tenant database
//     opened on demand within a shared connection budget;
//   - strategy/multischema: a schema per tenant in one database, a role per
//     tenant that may use its schema and no other, taken on per
//     transaction;
//   - strategy/singleschema: one shared schema with account_id on every
//     table, a gorm tenant scope that every query on a tenanted model must
//     carry, and row-level security set per transaction as the fail-safe.
//
// strategy/strategies opens one by name; strategy/audit checks a
// deployment of any of them; strategy/strategytest is the conformance suite
// each proves itself with. The tenant travels on the context.Context
// (models.NewContextWithTenant). This package imports only models, so
// another gorm application can use it, and an implementation, alone.
package strategy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gorm.io/gorm"

	"tenancy/models"
)

// Names of the strategies, as given in STRATEGY.
const (
	MultiDB      = "multidb"
	MultiSchema  = "multischema"
	SingleSchema = "singleschema"
)

// Names lists the strategies in a stable order (package strategies opens
// each by name).
func Names() []string { return []string{MultiDB, MultiSchema, SingleSchema} }

// Errors a caller can tell apart with errors.Is.
var (
	// ErrTenantNotFound: no tenant has that slug.
	ErrTenantNotFound = errors.New("tenant not found")
	// ErrNoTenant: work that needs a tenant was given a context without one.
	ErrNoTenant = errors.New("no tenant in context")
	// ErrNoTenantScope: a statement on a tenanted model had neither a tenant
	// nor an explicit request for all tenants.
	ErrNoTenantScope = errors.New("query on a tenanted model without a tenant scope")
	// ErrCrossTenantWrite: a row being created belongs to another tenant.
	ErrCrossTenantWrite = errors.New("row belongs to another tenant")
	// ErrNotSupported: the strategy cannot do this (e.g. multidb has no
	// all-tenants query).
	ErrNotSupported = errors.New("not supported by this strategy")
	// ErrUnavailable: the database could not be reached; retrying later may
	// work.
	ErrUnavailable = errors.New("database unavailable")
	// ErrTenantUnavailable: one tenant's own database (multidb) is missing
	// or refuses connections while the server and other tenants are fine.
	// It wraps ErrUnavailable: the tenant exists in the deployment, the
	// fault is the server's, and it may be transient (a restore).
	ErrTenantUnavailable = fmt.Errorf("tenant database unavailable: %w", ErrUnavailable)
	// ErrTenantUpgrading: the tenant's database or schema is at an older
	// schema version than the server's code needs (its migration failed
	// or has not reached it yet). That tenant alone is unavailable (503);
	// `tenancy migrate` finishes it.
	ErrTenantUpgrading = fmt.Errorf("tenant is being upgraded: %w", ErrTenantUnavailable)
	// ErrMissingPrivilege: PostgreSQL refused a runtime role a privilege
	// it needs (42501 outside row-level security): a grant missing from
	// the deployment, which trying again will not fix and which is not
	// an outage. Not ErrUnavailable: a missing grant reported as "the
	// database is down" went unnoticed for a long time.
	ErrMissingPrivilege = errors.New("a database role lacks a privilege (a deployment fault: `tenancy check` names it, `tenancy migrate` grants it)")
	// ErrPageNotFound: a page number past the last page.
	ErrPageNotFound = errors.New("page not found")
	// ErrUnsafeRole: the runtime role could bypass row-level security or owns
	// tenant data.
	ErrUnsafeRole = errors.New("unsafe database role")
	// ErrUnsafeDeployment: the database's row-level security, policies,
	// grants or functions are not what keeps tenants apart and the server
	// working (the server's own findings; see package audit).
	ErrUnsafeDeployment = errors.New("unsafe or incomplete database setup")
	// ErrNotEmpty: Admin.BulkLoad needs tables with no rows at all.
	ErrNotEmpty = errors.New("the tenant tables are not empty")
	// ErrUserNotFound: the tenant has no user with that email.
	ErrUserNotFound = errors.New("user not found")
	// ErrOperatorNotFound: no operator has that email.
	ErrOperatorNotFound = errors.New("operator not found")
	// ErrOperatorExists: an operator has that email already.
	ErrOperatorExists = errors.New("operator exists")
)

// RevokedSession is a sign-in ended by sign-out before it expired: every
// server refuses its cookie until Expires, when the row is purged.
type RevokedSession struct {
	ID        string
	Expires   time.Time
	RevokedAt time.Time
}

// Strategy is what the web application needs at run time. It connects as the
// unprivileged application role, never as the owner.
type Strategy interface {
	// Name is MultiDB or SingleSchema.
	Name() string
	// TenantBySlug resolves a slug such as "tenant-3" to its account.
	TenantBySlug(ctx context.Context, slug string) (models.Account, error)
	// Tenants lists the tenants known to this deployment, by slug: its
	// directory, read afresh.
	Tenants(ctx context.Context) ([]models.Account, error)
	// Tx runs fn in one transaction scoped to the tenant carried by ctx. tx
	// carries ctx, so gorm queries inside fn are scoped to that tenant.
	Tx(ctx context.Context, fn func(tx *gorm.DB) error) error
	// ListSubtasks returns one page (1-based) of the subtasks of the tenant
	// carried by ctx, or of every tenant when ctx was made by
	// models.NewContextForAllTenants (ErrNotSupported in multidb).
	ListSubtasks(ctx context.Context, page, perPage int) (SubtaskPage, error)
	// ReportOpenSubtasks reports, for every tenant, its open subtasks and
	// the projects with any, most open subtasks first (then by slug; see
	// SortOpenSubtasks), tenants with none included. ctx must be made by
	// models.NewContextForAllTenants (ErrNotAllTenants otherwise). It reads
	// as the read-only reader role in singleschema and multischema, and
	// as the app role, tenant database by tenant database, in multidb,
	// which lists the tenants it could not read within o's bounds in
	// Unreachable instead of failing whole (see crosstenant.go).
	ReportOpenSubtasks(ctx context.Context, o ReportOptions) (OpenSubtasksReport, error)
	// UserByEmail returns the user of the tenant carried by ctx whose
	// email is email, exactly (ErrUserNotFound when it has none, even if
	// another tenant does; ErrNoTenant without a tenant). It reads in a
	// read-only transaction under the tenant's scope, as every page does,
	// so it cannot return another tenant's user: sign-in rests on it.
	UserByEmail(ctx context.Context, email string) (models.User, error)
	// Writer creates, edits and deletes the tenant's subtasks and
	// completes its tasks (writes.go).
	Writer
	// OperatorByEmail returns the operator with email, compared without
	// case (ErrOperatorNotFound when there is none). Operators belong to
	// no tenant: a tenant's user is never one, and the tenant on ctx, if
	// any, does not matter.
	OperatorByEmail(ctx context.Context, email string) (models.Operator, error)
	// RevokeSession records that session id was signed out, to be refused
	// by every server until expires; expired records are purged on the
	// way.
	RevokeSession(ctx context.Context, id string, expires time.Time) error
	// RevokedSessions lists the sessions revoked at or after since that
	// have not expired yet, oldest revocation first.
	RevokedSessions(ctx context.Context, since time.Time) ([]RevokedSession, error)
	// Ping reports whether the databases the server needs are reachable.
	Ping(ctx context.Context) error
	// Close releases every connection.
	Close() error
}

// MigrateOptions say how a migration goes through a fleet of tenants. The
// zero value migrates the strategy's default number of tenants at once
// and stops at the first failure.
type MigrateOptions struct {
	// Jobs is how many tenants are migrated at once; 0 is the strategy's
	// default.
	Jobs int
	// Canary tenants are migrated first, and the run stops there if any
	// of them fails.
	Canary int
	// Continue goes on past a failed tenant instead of stopping.
	Continue bool
}

// Admin is what setup, migrate and seed need. It connects as the admin/owner
// role (PGUSER) and is never used by the web server.
type Admin interface {
	Name() string
	// Directory lists, adds and deletes tenants (tenants.go).
	Directory
	// Setup creates missing roles and databases and runs pending migrations;
	// running it again changes nothing.
	Setup(ctx context.Context, progress io.Writer) (Report, error)
	// Migrate runs pending migrations on every database the strategy uses,
	// tenant by tenant as o says (each tenant's pending migrations in one
	// transaction), and reports each tenant, those not attempted included.
	Migrate(ctx context.Context, progress io.Writer, o MigrateOptions) (Report, error)
	// ExistingSlugs returns those of slugs that already have an account.
	ExistingSlugs(ctx context.Context, slugs []string) ([]string, error)
	// CreateTenant writes the account and whatever fill writes in one
	// transaction (seed's way in; AddTenant makes an empty tenant). In
	// multidb the tenant must be in the directory already. It writes in one
	// transaction; with commit false it rolls everything back. Cancelling
	// ctx lets the running statement finish, then rolls back, so a nil
	// error means committed and an error means nothing was written.
	CreateTenant(ctx context.Context, account models.Account, commit bool, fill func(tx *gorm.DB) error) error
	// AssignIDs gives every row of d its id and fills in the foreign keys.
	// multidb: the account gets its tenant's id in the directory
	// (tenant-i, listed by setup, has i+1) and its rows ids from 1 in each
	// table, as its database holds that account alone; a tenant not listed
	// yet gets an id drawn from the directory's sequence. multischema:
	// tenant-i's account gets i+1, an account with another slug an id
	// drawn from the accounts' sequence, and the rows ids from 1, as its
	// schema holds that account alone. singleschema: the ids are drawn
	// from the shared tables' sequences, after every id
	// handed out before, so they never collide with anyone's rows, and
	// calls made one after another in a fixed order get the same ids in
	// every run (concurrent calls get them in the order they reach the
	// server).
	AssignIDs(ctx context.Context, d *TenantData) error
	// LoadTenant bulk loads d (with COPY) in one transaction, with the ids
	// AssignIDs gave it, or calls AssignIDs first if it has none; with
	// commit false it rolls back. A tenant that is not there yet is made
	// with it: multischema's schema and role, and multidb's database (from
	// the template) and directory row, the row only once the load has
	// committed; anything that fails is removed again. Cancelling ctx
	// stops the load where it is and rolls back; a nil error means
	// committed and an error means nothing was written. Afterwards the
	// tables' sequences are past the ids written, so an ordinary insert
	// gets a fresh id.
	// Its commits are asynchronous: call Flush once a run of loads is done.
	LoadTenant(ctx context.Context, d *TenantData, commit bool) error
	// CanBulkLoad reports whether BulkLoad can run now: every tenant table
	// empty, in a strategy that supports it (singleschema).
	CanBulkLoad(ctx context.Context) (bool, error)
	// BulkLoad writes every account it receives into empty tables in one
	// transaction, with the indexes and foreign keys built after the rows;
	// nothing is committed unless it returns nil. It gives the ids itself,
	// following on from the tables' sequences in the order the accounts
	// arrive (so tenant-i gets id i+1 in a fresh database when they arrive
	// in order), and moves the sequences only if it commits. loaded is
	// called as each account's rows are sent. ErrNotEmpty or
	// ErrNotSupported: use LoadTenant.
	BulkLoad(ctx context.Context, accounts <-chan *TenantData, commit bool, loaded func(*TenantData)) error
	// Flush makes every load committed so far durable.
	Flush(ctx context.Context) error
	// Reset deletes every account and everything it owns, and returns how
	// many accounts there were. The sequences keep going: a server that
	// still has an account cached by slug must not find another account at
	// its id. (multidb's loads reuse ids, which is safe there: tenant
	// database i only ever holds tenant-i, whose account is always i+1.)
	Reset(ctx context.Context) (int, error)
	// CreateOperator adds an operator, an account of no tenant, with a
	// password hash in Django's pbkdf2_sha256 format (ErrOperatorExists
	// when the email, compared without case, has one).
	CreateOperator(ctx context.Context, email, passwordHash string) (models.Operator, error)
	// Operators lists the operators by email.
	Operators(ctx context.Context) ([]models.Operator, error)
	// DeleteOperator removes the operator with email (ErrOperatorNotFound
	// when there is none). The server looks the operator up on each of
	// its requests, so its sessions end with it.
	DeleteOperator(ctx context.Context, email string) error
	// Destroy drops every database and role that Setup creates: for
	// throwaway deployments such as benchmarks. There is no undo.
	Destroy(ctx context.Context) error
	// Close releases every connection.
	Close() error
}

// SubtaskPage is one page of the subtask list.
type SubtaskPage struct {
	Page  int                 `json:"page"`
	Pages int                 `json:"pages"`
	Total int64               `json:"total"`
	Rows  []models.SubtaskRow `json:"rows"`
}
