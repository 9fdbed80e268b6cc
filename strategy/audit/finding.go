// Package audit checks a deployment of any strategy against what keeps
// tenants apart, assuming an attacker who holds a runtime role's password:
// the roles' attributes and memberships, what each may reach in each
// database (ownership, TEMPORARY and CREATE, grants, SECURITY DEFINER
// functions, session settings, foreign schemas and objects), and for
// singleschema the tenanted tables' row-level security and policies,
// probed for real. CheckSingleSchema and CheckMultiDB are `tenancy
// check`, as the admin; RuntimeRole, Reader, SingleSchemaServer and
// MultiDBTenant are what the servers check from their own sessions before
// they serve. Findings have a kind, so other tools can act on them.
package audit

import (
	"fmt"
	"strings"
)

// FindingKind names a kind of problem Check finds in a deployment.
type FindingKind string

// The kinds of finding. Those about roles, row-level security and policies
// are also checked by the singleschema server at start (see Open).
const (
	// FindingDatabaseMissing: a database of the deployment does not exist.
	FindingDatabaseMissing FindingKind = "database-missing"
	// FindingRoleMissing: the app or all-tenants role does not exist.
	FindingRoleMissing FindingKind = "role-missing"
	// FindingMigrationsPending: a database lacks some of the migrations.
	FindingMigrationsPending FindingKind = "migrations-pending"
	// FindingMigrationsAhead: a database has migrations this build does
	// not know (a newer build migrated it).
	FindingMigrationsAhead FindingKind = "migrations-ahead"
	// FindingTableMissing: a singleschema tenanted table does not exist.
	FindingTableMissing FindingKind = "table-missing"
	// FindingGrantMissing: the app role lacks a privilege the server
	// needs on a tenanted table (its queries would fail, closed).
	FindingGrantMissing FindingKind = "grant-missing"

	// FindingSuperuser: a runtime role is a superuser.
	FindingSuperuser FindingKind = "role-superuser"
	// FindingBypassRLS: the app role has BYPASSRLS.
	FindingBypassRLS FindingKind = "role-bypassrls"
	// FindingCreateRole: a runtime role has CREATEROLE (it could grant
	// itself the all-tenants reader).
	FindingCreateRole FindingKind = "role-createrole"
	// FindingReplication: a runtime role has REPLICATION (it could stream
	// every tenant's rows from the write-ahead log).
	FindingReplication FindingKind = "role-replication"
	// FindingPrivilegedMember: the app role is a member of a superuser,
	// BYPASSRLS or CREATEROLE role, and could SET ROLE to it.
	FindingPrivilegedMember FindingKind = "role-member-of-privileged"
	// FindingPredefinedMember: a runtime role is a member of a predefined
	// role that reads or writes all data, server files or programs, or
	// signals other sessions (pg_read_all_data, pg_execute_server_program,
	// ...).
	FindingPredefinedMember FindingKind = "role-member-of-predefined"
	// FindingOwnsTable: a runtime role owns, or is a member of the owner
	// of, the database, a schema, a table or a function.
	FindingOwnsTable FindingKind = "role-owns-objects"
	// FindingCanCreateTemp: a runtime role may create temporary objects,
	// which come first on a search_path that does not name pg_temp.
	FindingCanCreateTemp FindingKind = "role-can-create-temp"
	// FindingCanCreate: a runtime role may create schemas or objects.
	FindingCanCreate FindingKind = "role-can-create"
	// FindingRoleSetting: a runtime role's session defaults differ from
	// setup's in a way that changes what its queries reach (a search_path
	// with "$user" or another schema, a role setting).
	FindingRoleSetting FindingKind = "role-setting"
	// FindingReaderNoBypassRLS: the all-tenants role would see no rows.
	FindingReaderNoBypassRLS FindingKind = "reader-lacks-bypassrls"
	// FindingReaderCanWrite: the all-tenants role, which sees every
	// tenant, may write.
	FindingReaderCanWrite FindingKind = "reader-can-write"
	// FindingReaderNotReadOnly: the all-tenants role's transactions are
	// not read-only by default.
	FindingReaderNotReadOnly FindingKind = "reader-not-read-only"
	// FindingReaderReadsSecrets: the all-tenants role may read users'
	// password hashes.
	FindingReaderReadsSecrets FindingKind = "reader-reads-passwords"
	// FindingExtraGrant: a runtime role holds a privilege the server does
	// not need on a table (TRUNCATE, which ignores row-level security;
	// TRIGGER; writes to what only the admin or the triggers write).
	FindingExtraGrant FindingKind = "grant-extra"
	// FindingDefinerCallable: a runtime role may call a SECURITY DEFINER
	// function, which runs with its owner's rights.
	FindingDefinerCallable FindingKind = "definer-callable"
	// FindingDefinerSearchPath: a SECURITY DEFINER function a runtime role
	// can call or fire does not end its search_path with pg_temp, so the
	// caller's temporary objects can stand in for what it names.
	FindingDefinerSearchPath FindingKind = "definer-search-path"
	// FindingViewBypassesRLS: the app role may read a view or materialized
	// view that shows tenanted rows past row-level security.
	FindingViewBypassesRLS FindingKind = "view-bypasses-rls"
	// FindingUntenantedTable: the app role may use a table that is neither
	// tenant data nor declared shared.
	FindingUntenantedTable FindingKind = "table-not-tenanted"
	// FindingNoTenantColumn: a table holds tenants' rows (through a
	// foreign key) but has no tenant column for a policy to compare.
	FindingNoTenantColumn FindingKind = "table-without-tenant-column"
	// FindingPolicyNotCanonical: a policy that applies to the app role is
	// not the tenant policy, or app_current_tenant() is not what the
	// policies trust it to be.
	FindingPolicyNotCanonical FindingKind = "policy-not-canonical"
	// FindingSchemaMissing: a multischema tenant's schema does not exist
	// (its pages fail, closed).
	FindingSchemaMissing FindingKind = "schema-missing"
	// FindingRoleInherits: multischema's app role inherits the privileges
	// of the tenants' roles it is a member of, so it may use every tenant's
	// schema without taking a tenant on.
	FindingRoleInherits FindingKind = "role-inherits"
	// FindingTenantSchemaReach: a role may use a tenant's schema that is
	// not its own (a tenant's role, another tenant's; the app role, any).
	FindingTenantSchemaReach FindingKind = "tenant-schema-reach"
	// FindingForeignSchema: a schema the strategy does not use.
	FindingForeignSchema FindingKind = "foreign-schema"
	// FindingForeignObject: an object in the strategy's schema, or a
	// project database, that belongs to another role than the admin (or
	// the counts owner).
	FindingForeignObject FindingKind = "foreign-object"

	// FindingDefaultTenant: app.tenant_id has a default for the app role, so
	// a transaction that forgets to set the tenant acts as that tenant.
	FindingDefaultTenant FindingKind = "default-tenant-setting"
	// FindingRLSDisabled: a tenanted table does not have row-level security
	// enabled.
	FindingRLSDisabled FindingKind = "rls-disabled"
	// FindingRLSNotForced: a tenanted table's owner bypasses its policies.
	FindingRLSNotForced FindingKind = "rls-not-forced"
	// FindingPolicyMissing: no policy on a tenanted table applies to the
	// app role (row-level security then fails closed: it sees nothing).
	FindingPolicyMissing FindingKind = "policy-missing"
	// FindingPolicyOpenWithoutTenant: with no tenant set, the app role
	// reached rows (the probe read, updated or deleted them).
	FindingPolicyOpenWithoutTenant FindingKind = "policy-open-without-tenant"
	// FindingPolicyOpenToOtherTenant: with one tenant set, the app role
	// reached another tenant's rows.
	FindingPolicyOpenToOtherTenant FindingKind = "policy-open-to-other-tenant"
	// FindingPolicyAllowsForeignWrite: a policy's WITH CHECK let the app
	// role insert a row for, or move a row to, another tenant.
	FindingPolicyAllowsForeignWrite FindingKind = "policy-allows-cross-tenant-write"
	// FindingCountsDrifted: subtask_counts disagrees with the subtasks
	// (triggers disabled, a restore without them, a write around them), so
	// list pages show wrong totals and the all-tenants view skips or repeats
	// rows.
	FindingCountsDrifted FindingKind = "subtask-counts-drifted"
)

// BreaksIsolation reports whether a finding of kind k can let one tenant's
// work read or change another tenant's rows, or let a role past the
// policies. The other kinds stop the deployment from working but fail
// closed.
func (k FindingKind) BreaksIsolation() bool {
	switch k {
	case FindingDatabaseMissing, FindingRoleMissing, FindingMigrationsPending, FindingTableMissing, FindingSchemaMissing,
		FindingGrantMissing, FindingReaderNoBypassRLS, FindingPolicyMissing, FindingCountsDrifted:
		return false
	}
	return true
}

// aboutRole reports whether a finding of kind k is about what a runtime
// role is or holds (its attributes, memberships, ownership, privileges
// and settings) rather than about the database's tables and policies.
func (k FindingKind) aboutRole() bool {
	switch k {
	case FindingSuperuser, FindingBypassRLS, FindingCreateRole, FindingReplication, FindingPrivilegedMember,
		FindingPredefinedMember, FindingOwnsTable, FindingCanCreateTemp, FindingCanCreate, FindingRoleSetting, FindingRoleInherits,
		FindingReaderNoBypassRLS, FindingReaderCanWrite, FindingReaderNotReadOnly, FindingReaderReadsSecrets, FindingExtraGrant:
		return true
	}
	return false
}

// Finding is one problem Check found.
type Finding struct {
	Kind FindingKind
	// Database is where it was found; empty for what belongs to the whole
	// server (a role's attributes).
	Database string
	// Subject is what it is about, e.g. `role "tenancy_app"`, `table
	// subtasks`.
	Subject string
	// Problem says what is wrong and why it matters.
	Problem string
	// Fix says what to do about it.
	Fix string
}

func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Subject)
	if f.Database != "" {
		fmt.Fprintf(&b, " in database %q", f.Database)
	}
	fmt.Fprintf(&b, ": %s", f.Problem)
	if f.Fix != "" {
		fmt.Fprintf(&b, "; %s", f.Fix)
	}
	return b.String()
}

// Report is what Check found, and what it looked at.
type Report struct {
	Strategy string
	Findings []Finding
	// Checked says, one line each, what was inspected, for a summary when
	// there are no findings.
	Checked []string
}

// IsolationFindings counts the findings that break tenant isolation.
func (r Report) IsolationFindings() int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind.BreaksIsolation() {
			n++
		}
	}
	return n
}

func (r *Report) add(fs ...Finding) { r.Findings = append(r.Findings, fs...) }

func (r *Report) checked(format string, args ...any) {
	r.Checked = append(r.Checked, fmt.Sprintf(format, args...))
}
