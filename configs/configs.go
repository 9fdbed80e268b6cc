// Package configs reads and validates the environment. Every variable is
// checked up front, and an error names the variable that is wrong and what
// it should look like. Variables is the one description of them: Load
// reads by it, and --help and docs/configuration.md are written from it.
package configs

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"tenancy/strategy"
)

// Config is everything the commands read from the environment.
type Config struct {
	Strategy strategy.Options
	// SecretKey is required by serve (SECRET_KEY).
	SecretKey string
	// SecretKeyFallbacks are earlier SECRET_KEYs whose cookies serve still
	// accepts (SECRET_KEY_FALLBACKS).
	SecretKeyFallbacks []string
	// BaseDomain is the domain below which tenants live: tenant-3.<BaseDomain>.
	BaseDomain string
	// AllTenantsView serves every tenant's data at the bare base domain
	// (ALL_TENANTS_VIEW, default on), to signed-in operators.
	AllTenantsView bool
	// Metrics serves /metrics and /metrics/tenants at the bare base domain
	// (METRICS, default on), to signed-in operators.
	Metrics bool
}

// Defaults that work against a local trust-auth PostgreSQL.
const (
	DefaultHost         = "127.0.0.1"
	DefaultPort         = 5432
	DefaultUser         = "postgres"
	DefaultDatabase     = "tenancy"
	DefaultStrategy     = strategy.SingleSchema
	DefaultTenantCount  = 5
	DefaultBaseDomain   = "localhost"
	MinSecretKeyLength  = 16
	MaxTenantCount      = 10000
	maxIdentifierLength = 63
)

var (
	databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	roleName     = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	domainName   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

// Load reads the environment through getenv (os.Getenv in main, a map in
// tests) and returns every problem at once. It reads only the variables
// Variables lists, and takes their literal defaults and ranges from there.
func Load(getenv func(string) string) (Config, error) {
	vars := variablesByName()
	var errs []error
	bad := func(name, value, want string) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, value, want))
	}
	// given is what the user set, blank being unset. Asking for a name
	// the table does not list is a mistake in this function, which every
	// test of Load would hit.
	given := func(name string) string {
		if _, ok := vars[name]; !ok {
			panic("configs: Load reads " + name + ", which Variables does not list")
		}
		return strings.TrimSpace(getenv(name))
	}
	str := func(name string) string {
		if v := given(name); v != "" {
			return v
		}
		return vars[name].Value
	}
	// secret is taken as given: spaces may be part of a password.
	secret := func(name string) string {
		given(name)
		return getenv(name)
	}
	// num is 0 when the variable is unset and has no literal default; the
	// caller computes that default.
	num := func(name string) int {
		raw := str(name)
		if raw == "" {
			return 0
		}
		v := vars[name]
		n, err := strconv.Atoi(raw)
		if err != nil || n < v.Min || n > v.Max {
			bad(name, raw, fmt.Sprintf("want a whole number from %d to %d", v.Min, v.Max))
			return 0
		}
		return n
	}

	o := strategy.Options{
		Strategy:       str("STRATEGY"),
		Host:           str("PGHOST"),
		Port:           num("PGPORT"),
		SSLMode:        str("PGSSLMODE"),
		TimeZone:       str("TZ"),
		AdminUser:      str("PGUSER"),
		AdminPassword:  secret("PGPASSWORD"),
		Database:       str("PGDATABASE"),
		TenantCount:    num("MULTIDB_COUNT"),
		MaxConns:       num("DB_MAX_CONNS"),
		TenantConns:    num("MULTIDB_OPEN_CONNS"), // 0: strategy derives it from max_connections
		Servers:        num("MULTIDB_SERVERS"),
		QueryExecMode:  str("DB_QUERY_EXEC_MODE"),
		AppUser:        str("APP_DB_USER"),
		AppPassword:    secret("APP_DB_PASSWORD"),
		ReaderUser:     str("READER_DB_USER"),
		ReaderPassword: secret("READER_DB_PASSWORD"),
	}
	// The computed defaults, as Variables describes them.
	if o.SSLMode == "" {
		o.SSLMode = defaultSSLMode(o.Host)
	}
	if o.MaxConns == 0 {
		o.MaxConns = strategy.DefaultMaxConns()
	}
	if o.AppUser == "" {
		o.AppUser = o.Database + "_app"
	}
	if o.ReaderUser == "" {
		o.ReaderUser = o.Database + "_reader"
	}

	if !slices.Contains(strategy.Names(), o.Strategy) {
		bad("STRATEGY", o.Strategy, "want "+StrategyChoices())
	}
	switch o.SSLMode {
	case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		bad("PGSSLMODE", o.SSLMode, "want disable, allow, prefer, require, verify-ca or verify-full")
	}
	databaseOK := true
	if !databaseName.MatchString(o.Database) || len(o.Database) > maxDatabaseLength() {
		bad("PGDATABASE", o.Database, fmt.Sprintf("want lower-case letters, digits and _, not starting with a digit, at most %d characters", maxDatabaseLength()))
		databaseOK = false
	}
	for _, r := range []struct{ name, value string }{{"APP_DB_USER", o.AppUser}, {"READER_DB_USER", o.ReaderUser}} {
		// A name derived from a bad PGDATABASE is that variable's fault.
		if (given(r.name) != "" || databaseOK) && (!roleName.MatchString(r.value) || len(r.value) > maxIdentifierLength) {
			bad(r.name, r.value, "want lower-case letters, digits and _, not starting with a digit, at most 63 characters")
		}
	}
	if o.AppUser == o.AdminUser {
		bad("APP_DB_USER", o.AppUser, "must differ from PGUSER: the server must not connect as the owner of the tables")
	}
	if o.ReaderUser == o.AppUser || o.ReaderUser == o.AdminUser {
		bad("READER_DB_USER", o.ReaderUser, "must differ from APP_DB_USER and PGUSER")
	}
	switch o.QueryExecMode {
	case "", "cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol":
	default:
		bad("DB_QUERY_EXEC_MODE", o.QueryExecMode, "want exec behind PgBouncer before 1.21 in transaction mode, else leave it unset (or cache_statement, cache_describe, describe_exec, simple_protocol)")
	}
	if o.TimeZone != "" {
		// "Local" is Go's name for the process's zone; PostgreSQL knows no
		// such zone.
		if _, err := time.LoadLocation(o.TimeZone); err != nil || o.TimeZone == "Local" {
			bad("TZ", o.TimeZone, "want an IANA time zone such as UTC or Australia/Adelaide")
		}
	}

	c := Config{
		Strategy:  o,
		SecretKey: secret("SECRET_KEY"),
		SecretKeyFallbacks: strings.FieldsFunc(secret("SECRET_KEY_FALLBACKS"), func(r rune) bool {
			return r == ',' || unicode.IsSpace(r)
		}),
		BaseDomain: strings.ToLower(str("BASE_DOMAIN")),
	}
	var workerReads bool
	for _, sw := range []struct {
		name string
		on   *bool
	}{{"ALL_TENANTS_VIEW", &c.AllTenantsView}, {"METRICS", &c.Metrics}, {"CITUS_WORKER_READS", &workerReads}} {
		switch v := strings.ToLower(str(sw.name)); v {
		case "on", "true", "1", "yes":
			*sw.on = true
		case "off", "false", "0", "no":
		default:
			bad(sw.name, v, "want on or off")
		}
	}
	c.Strategy.CoordinatorReads = !workerReads
	if !domainName.MatchString(c.BaseDomain) || len(c.BaseDomain) > 200 {
		bad("BASE_DOMAIN", c.BaseDomain, "want a domain name such as localhost or example.com")
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("invalid environment:\n%w", err)
	}
	return c, nil
}

// RequireSecretKey checks SECRET_KEY, which serve needs and other commands
// do not.
func (c Config) RequireSecretKey() error {
	if len(c.SecretKey) < MinSecretKeyLength {
		return fmt.Errorf("SECRET_KEY: set it to a random string of at least %d characters (e.g. export SECRET_KEY=$(head -c 32 /dev/urandom | base64))", MinSecretKeyLength)
	}
	for i, k := range c.SecretKeyFallbacks {
		if len(k) < MinSecretKeyLength {
			return fmt.Errorf("SECRET_KEY_FALLBACKS: key %d of %d is %d characters long; each is an earlier SECRET_KEY, of at least %d characters, separated by commas or spaces", i+1, len(c.SecretKeyFallbacks), len(k), MinSecretKeyLength)
		}
	}
	return nil
}

// defaultSSLMode is libpq's default, prefer, except on loopback and Unix
// sockets: there TLS protects nothing and costs both ends a cipher on every
// message, about 6% of the tenant page's throughput here.
func defaultSSLMode(host string) string {
	if strings.HasPrefix(host, "/") {
		return "disable"
	}
	if host == "localhost" {
		return "disable"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "disable"
	}
	return "prefer"
}

// StrategyChoices lists the strategies for help and error text:
// "multidb, multischema or singleschema".
func StrategyChoices() string {
	names := strategy.Names()
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
