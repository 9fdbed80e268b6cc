package configs

import (
	"fmt"
	"strconv"
)

// Variable describes one environment variable the commands read. The
// table of them, Variables, is the one place their names, defaults and
// meanings are written down: Load reads only the names it lists and takes
// literal defaults from it, and both `tenancy --help` (Help) and
// docs/configuration.md (MarkdownTable) are rendered from it.
type Variable struct {
	// Name is the variable's name, e.g. PGHOST.
	Name string
	// Value is what Load uses when the variable is unset or blank, written
	// as a user would write it (it is parsed and checked like one). Empty
	// when there is no default, or when Load computes it (see Default).
	Value string
	// Default describes a default that Load computes, for people, in
	// Markdown (code in backquotes). Empty for a literal Value, which
	// speaks for itself, and for no default at all.
	Default string
	// Min and Max are the whole numbers Load accepts, for a numeric
	// variable; both zero for any other.
	Min, Max int
	// Summary is the one line --help gives it, after the name.
	Summary string
	// Meaning is a paragraph for the documentation, in Markdown: what it
	// decides, the values it takes and when to set it.
	Meaning string
}

// DefaultText is the default as shown to people, in Markdown: the computed
// default described, the literal value in backquotes, or "none".
func (v Variable) DefaultText() string {
	switch {
	case v.Default != "":
		return v.Default
	case v.Value != "":
		return "`" + v.Value + "`"
	}
	return "none"
}

// maxDatabaseLength is the longest PGDATABASE: multidb appends
// "_tenant-<i>", and the result must still fit PostgreSQL's 63-byte
// identifiers.
func maxDatabaseLength() int {
	return maxIdentifierLength - len("_tenant-") - len(strconv.Itoa(MaxTenantCount))
}

// The numeric ranges Load accepts.
const (
	maxPort        = 65535
	minConns       = 2
	maxConns       = 1000
	maxTenantConns = 100000
	maxServers     = 1000
)

//go:generate go run ./cmd/configdoc ../docs/configuration.md

// Variables returns every environment variable the commands read, in the
// order help and the documentation list them.
func Variables() []Variable {
	return []Variable{
		{
			Name:    "STRATEGY",
			Value:   DefaultStrategy,
			Summary: StrategyChoices(),
			Meaning: "The strategy every command sets up, seeds, serves and checks: `multidb`, one database per tenant; `multischema`, one schema per tenant in one database, each reached only through the tenant's own role; or `singleschema`, one shared schema with an `account_id` on every row and row-level security.",
		},
		{
			Name:    "PGHOST",
			Value:   DefaultHost,
			Summary: "server host or Unix socket directory",
			Meaning: "The PostgreSQL server every connection goes to: a host name, an IP address, or a path (starting with `/`) to the directory of its Unix socket. It also decides the default of `PGSSLMODE`.",
		},
		{
			Name:    "PGPORT",
			Value:   strconv.Itoa(DefaultPort),
			Min:     1,
			Max:     maxPort,
			Summary: "server port",
			Meaning: "The server's port; with a Unix socket directory, the number in the socket's file name. PgBouncer usually listens on 6432 (see `DB_QUERY_EXEC_MODE`).",
		},
		{
			Name:    "PGUSER",
			Value:   DefaultUser,
			Summary: "admin role, owns the tables: a superuser for singleschema and multischema, CREATEDB and CREATEROLE for multidb",
			Meaning: "The admin role: creates the other roles and the databases, owns the tables, runs migrations and `seed`, and is the role `check`, `bench` and `compare` connect as. singleschema needs a superuser here (it creates the BYPASSRLS reader, and seed must see every tenant's accounts through FORCE'd row-level security); multischema needs a superuser too (it creates a role per tenant, makes the app role a member of each, and loads rows with ids of their own); multidb needs CREATEDB and CREATEROLE. `serve` does not connect as it.",
		},
		{
			Name:    "PGPASSWORD",
			Summary: "password of PGUSER",
			Meaning: "`PGUSER`'s password, when the server asks for one. The driver also falls back to it for the app and reader roles when their own passwords are unset (see [Passwords](#passwords)).",
		},
		{
			Name:    "PGDATABASE",
			Value:   DefaultDatabase,
			Summary: "database, or multidb's database prefix",
			Meaning: fmt.Sprintf("The singleschema database. multidb's tenant databases are `<PGDATABASE>_tenant-<i>`, and `<PGDATABASE>` itself holds no tenant data. It also names the roles by default (`APP_DB_USER`, `READER_DB_USER`) and the throwaway databases of `bench` and `compare`. Lower-case letters, digits and `_`, not starting with a digit, at most %d characters, so that every tenant database's name fits PostgreSQL's %d.", maxDatabaseLength(), maxIdentifierLength),
		},
		{
			Name:    "PGSSLMODE",
			Default: "`disable` on loopback and Unix sockets, else `prefer`",
			Summary: "libpq sslmode, disable to verify-full",
			Meaning: "libpq's `sslmode` for every connection: `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`. TLS to a server on the same machine protects nothing and cost about 6% of the tenant page's throughput, so it is off by default for a loopback address, `localhost` and a Unix socket. Set it yourself when a loopback address is a tunnel to a remote server, or the local server accepts only TLS; across a network you do not trust, use `verify-full` (see [TLS](#tls)).",
		},
		{
			Name:    "MULTIDB_COUNT",
			Value:   strconv.Itoa(DefaultTenantCount),
			Min:     1,
			Max:     MaxTenantCount,
			Summary: "multidb tenants setup lists",
			Meaning: "The tenants multidb's `setup` lists in the tenant directory (and creates databases for) when they are missing: `tenant-0` to `tenant-<N-1>`. Also `seed`'s default `--accounts` for multidb. After setup the directory is the truth for `serve`, `migrate`, `check`, `report` and `seed` (`tenancy tenant create` and `delete` add and remove tenants; see [tenants.md](tenants.md)). singleschema and multischema ignore it.",
		},
		{
			Name:    "MULTIDB_OPEN_CONNS",
			Default: "`DB_MAX_CONNS` per tenant, at most 3/4 of the server's `max_connections` less its superuser reserve, divided by `MULTIDB_SERVERS`, at least `DB_MAX_CONNS`",
			Min:     minConns,
			Max:     maxTenantConns,
			Summary: "multidb: connections kept open, idle ones included",
			Meaning: "The connections a multidb server keeps open across its tenant databases, idle ones included; pools opening while others close may pass it by up to `DB_MAX_CONNS`. The default lets every tenant's pool keep its working budget, within three quarters of what the server allows, leaving the rest for the admin, migrations and other clients; `serve` reads `max_connections` at start to work it out. Set it, or `MULTIDB_SERVERS`, when several servers share the PostgreSQL cluster (a deploy that overlaps two, say), so that together they stay under `max_connections`.",
		},
		{
			Name:    "MULTIDB_SERVERS",
			Value:   "1",
			Min:     1,
			Max:     maxServers,
			Summary: "multidb: servers sharing the PostgreSQL cluster",
			Meaning: "How many multidb servers share the PostgreSQL cluster at most, a deploy that overlaps old and new counting both. Unless `MULTIDB_OPEN_CONNS` is set, each server keeps open at most its share of the three quarters of `max_connections` the default allows, so that together they stay within it: the budget shared by the servers is configured here, not guessed by each server on its own. A whole number from 1 to 1000.",
		},
		{
			Name:    "APP_DB_USER",
			Default: "`<PGDATABASE>_app`",
			Summary: "role the server connects as",
			Meaning: fmt.Sprintf("The role `serve` connects as, which `setup` creates as a plain login role: not a superuser, no BYPASSRLS, owns nothing. `setup` refuses an existing role that is a superuser or has BYPASSRLS, CREATEROLE or REPLICATION, and `serve` refuses to start as one that could bypass row-level security or owns a table. Must differ from `PGUSER`. Lower-case letters, digits and `_`, not starting with a digit, at most %d characters.", maxIdentifierLength),
		},
		{
			Name:    "APP_DB_PASSWORD",
			Summary: "password of APP_DB_USER, set on the role by setup",
			Meaning: "`APP_DB_USER`'s password. When it is set, `setup` gives the role this password (when it creates the role, and with `ALTER ROLE` when the role exists) and `serve` connects with it. Set it when the server asks its clients for passwords.",
		},
		{
			Name:    "READER_DB_USER",
			Default: "`<PGDATABASE>_reader`",
			Summary: "read-only all-tenants role",
			Meaning: "The role of singleschema's all-tenants page and of looking up a tenant by slug: `setup` creates it with BYPASSRLS, SELECT-only grants and `default_transaction_read_only`, and `serve` refuses to start if it could write or lacks BYPASSRLS. Must differ from `APP_DB_USER` and `PGUSER`. multidb does not use it. Same form as `APP_DB_USER`.",
		},
		{
			Name:    "READER_DB_PASSWORD",
			Summary: "password of READER_DB_USER, set on the role by setup",
			Meaning: "`READER_DB_USER`'s password, set by `setup` and used by `serve` as `APP_DB_PASSWORD` is.",
		},
		{
			Name:    "DB_MAX_CONNS",
			Default: "2 x cores, at least 4",
			Min:     minConns,
			Max:     maxConns,
			Summary: "connections at work at once",
			Meaning: "The connections the server works on at once. singleschema: the app pool and the all-tenants pool hold at most this many each. multidb: the connections in use at once across all tenant databases (one tenant may use half), and what each tenant's pool may keep open. The default counts this machine's cores, so it suits a PostgreSQL server on the same machine: more busy backends than cores only take turns (on two cores, 4 connections served the singleschema page at 1,751 req/s and 16 at about 1,400).",
		},
		{
			Name:    "DB_QUERY_EXEC_MODE",
			Default: "pgx's own, `cache_statement`",
			Summary: "pgx's query exec mode; exec behind PgBouncer before 1.21",
			Meaning: "pgx's `default_query_exec_mode`: `cache_statement`, `cache_describe`, `describe_exec`, `exec` or `simple_protocol`. Set `exec` (no named server-side statements) behind PgBouncer older than 1.21 in transaction mode, which has no prepared statements; leave it unset when connecting to PostgreSQL directly.",
		},
		{
			Name:    "CITUS_WORKER_READS",
			Value:   "on",
			Summary: "on or off: singleschema on Citus reads a tenant's page on its worker",
			Meaning: "On a Citus coordinator, `on` (or `true`, `1`, `yes`) makes singleschema's `serve` read a tenant's page on the worker that holds the tenant's shards, with the same role and password, at the address the coordinator knows it by (`pg_dist_node`), so the read runs there without a hop between nodes (see [Citus](citus.md#reads-on-the-tenants-worker)); a worker the server cannot reach is left alone for a minute and its tenants read through the coordinator. `off` (or `false`, `0`, `no`) sends every read to the coordinator. Plain PostgreSQL and the other strategies ignore it.",
		},
		{
			Name:    "BASE_DOMAIN",
			Value:   DefaultBaseDomain,
			Summary: "tenants live at <slug>.<BASE_DOMAIN>",
			Meaning: "The domain the tenants live below: `tenant-3.<BASE_DOMAIN>` is `tenant-3`, and a Host outside it gets 400. Compared in lower case. `loadcheck` reads it too, unless given `--base-domain`.",
		},
		{
			Name:    "ALL_TENANTS_VIEW",
			Value:   "on",
			Summary: "on or off: all tenants at <BASE_DOMAIN>, to operators",
			Meaning: "`on` (or `true`, `1`, `yes`) serves every tenant's subtasks at `<BASE_DOMAIN>` itself in singleschema and multischema, and the list of tenants in multidb, and in every strategy the cross-tenant report at `<BASE_DOMAIN>/reports/open-subtasks`, to a signed-in operator (`tenancy operator create`; see [Users](users.md#operators)); `off` (or `false`, `0`, `no`) answers 404 there, operators' sign-in included, before anyone signs in.",
		},
		{
			Name:    "METRICS",
			Value:   "on",
			Summary: "on or off: /metrics and /metrics/tenants at <BASE_DOMAIN>, to operators",
			Meaning: "`on` (or `true`, `1`, `yes`) makes `serve` answer `/metrics` (Prometheus's text format: requests by route and status, the connection pools, the Go runtime) and `/metrics/tenants` (the busiest tenants of the last minute, as JSON) at `<BASE_DOMAIN>` itself, to a signed-in operator (a scraper signs in as one: see [Metrics](operations.md#metrics)); tenant addresses get 404 there. `off` (or `false`, `0`, `no`) answers 404 there too, and counts nothing.",
		},
		{
			Name:    "SECRET_KEY",
			Summary: fmt.Sprintf("required by serve, at least %d characters", MinSecretKeyLength),
			Meaning: fmt.Sprintf("Required by `serve`, which refuses to start without one of at least %d characters, and signs and encrypts the sign-in cookie with keys derived from it (changing it signs everyone out, unless the old key is listed in `SECRET_KEY_FALLBACKS`); the other commands ignore it. `make up` makes a random one (see [serve and SECRET_KEY](#serve-and-secret_key)).", MinSecretKeyLength),
		},
		{
			Name:    "SECRET_KEY_FALLBACKS",
			Summary: "earlier SECRET_KEYs still accepted, separated by commas or spaces",
			Meaning: fmt.Sprintf("Earlier values of `SECRET_KEY`, as Django's `SECRET_KEY_FALLBACKS`: a sign-in cookie signed with one of them is still accepted, and every new cookie is signed with `SECRET_KEY` alone. To rotate the key, set `SECRET_KEY` to a new one and list the old one here; once the old cookies have expired (12 hours), remove it. Each must be at least %d characters; separate them with commas or spaces.", MinSecretKeyLength),
		},
		{
			Name:    "TZ",
			Default: "the server's `TimeZone`",
			Summary: "session time zone, e.g. UTC",
			Meaning: "The time zone of every database session, an IANA name such as `UTC` or `Australia/Adelaide` (`Local` is refused: PostgreSQL knows no such zone). Unset, sessions keep the server's `TimeZone` setting. Go reads `TZ` too, for the process's own local time.",
		},
	}
}

// variablesByName indexes Variables by name.
func variablesByName() map[string]Variable {
	vs := Variables()
	m := make(map[string]Variable, len(vs))
	for _, v := range vs {
		m[v.Name] = v
	}
	return m
}
