package configs

import (
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestVariablesAreWellFormed(t *testing.T) {
	name := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	seen := map[string]bool{}
	for _, v := range Variables() {
		if !name.MatchString(v.Name) || seen[v.Name] {
			t.Errorf("variable name %q: want a unique upper-case name", v.Name)
		}
		seen[v.Name] = true
		if v.Summary == "" || v.Meaning == "" {
			t.Errorf("%s: Summary %q, Meaning %q, want both", v.Name, v.Summary, v.Meaning)
		}
		// A described default beside a literal one would be shown instead
		// of it, and could drift from it.
		if v.Value != "" && v.Default != "" {
			t.Errorf("%s: Value %q and Default %q, want at most one", v.Name, v.Value, v.Default)
		}
		if v.Min > v.Max {
			t.Errorf("%s: Min %d > Max %d", v.Name, v.Min, v.Max)
		}
	}
}

// recordingGetenv returns a getenv over m that notes every name asked for.
func recordingGetenv(m map[string]string, asked map[string]bool) func(string) string {
	return func(k string) string {
		asked[k] = true
		return m[k]
	}
}

func TestLoadReadsExactlyTheListedVariables(t *testing.T) {
	asked := map[string]bool{}
	for _, m := range []map[string]string{
		nil,
		{"STRATEGY": "multidb", "PGHOST": "db.example.com", "PGPORT": "6432", "PGUSER": "admin", "PGPASSWORD": "pw",
			"PGDATABASE": "acme", "PGSSLMODE": "require", "TZ": "UTC", "MULTIDB_COUNT": "7", "MULTIDB_OPEN_CONNS": "64",
			"APP_DB_USER": "web", "APP_DB_PASSWORD": "pw2", "READER_DB_USER": "reader", "READER_DB_PASSWORD": "pw3",
			"DB_MAX_CONNS": "8", "DB_QUERY_EXEC_MODE": "exec", "BASE_DOMAIN": "example.com", "ALL_TENANTS_VIEW": "off", "METRICS": "off",
			"SECRET_KEY": strings.Repeat("k", MinSecretKeyLength)},
		{"STRATEGY": "x", "PGPORT": "y", "PGDATABASE": "Bad"},
	} {
		// Load panics on a name Variables does not list.
		Load(recordingGetenv(m, asked))
	}
	for _, v := range Variables() {
		if !asked[v.Name] {
			t.Errorf("Variables lists %s, which Load never reads", v.Name)
		}
	}
}

func TestLiteralDefaultsAreWhatLoadUses(t *testing.T) {
	want, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load(empty): %v", err)
	}
	for _, v := range Variables() {
		if v.Value == "" {
			continue
		}
		// Setting a variable to its documented default changes nothing.
		m := map[string]string{v.Name: v.Value}
		got, err := Load(env(m))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Load(%v) = %+v, %v; want what Load(empty) gives, %+v", m, got, err, want)
		}
	}
}

func variable(t *testing.T, name string) Variable {
	t.Helper()
	v, ok := variablesByName()[name]
	if !ok {
		t.Fatalf("Variables lacks %s", name)
	}
	return v
}

// TestSSLModeDefaultIsDescribed checks PGSSLMODE's described default
// against what Load does (help once said prefer, everywhere).
func TestSSLModeDefaultIsDescribed(t *testing.T) {
	v := variable(t, "PGSSLMODE")
	m := regexp.MustCompile("^`([a-z-]+)` on loopback and Unix sockets, else `([a-z-]+)`$").FindStringSubmatch(v.Default)
	if m == nil {
		t.Fatalf("PGSSLMODE Default = %q, want \"`<mode>` on loopback and Unix sockets, else `<mode>`\"", v.Default)
	}
	local, remote := m[1], m[2]
	if local != "disable" || remote != "prefer" {
		t.Errorf("PGSSLMODE Default says %s locally and %s elsewhere, want disable and prefer", local, remote)
	}
	for _, tc := range []struct{ host, want string }{
		{"", local}, // PGHOST's default, 127.0.0.1
		{"127.0.0.1", local},
		{"::1", local},
		{"localhost", local},
		{"/var/run/postgresql", local},
		{"db.example.com", remote},
		{"10.0.0.5", remote},
	} {
		c, err := Load(env(map[string]string{"PGHOST": tc.host}))
		if err != nil || c.Strategy.SSLMode != tc.want {
			t.Errorf("Load(PGHOST=%q).SSLMode = %q, %v; PGSSLMODE's Default %q says %q", tc.host, c.Strategy.SSLMode, err, v.Default, tc.want)
		}
	}
}

// TestTenantConnsDefaultIsDescribed checks that MULTIDB_OPEN_CONNS is
// described as derived from max_connections (help once said 64), and that
// Load leaves it for strategy to derive. The rule itself is
// strategy.Options.tenantConnsFor, unexported: its cases are in
// strategy's TestMultiDBSizesItsOpenConnections.
func TestTenantConnsDefaultIsDescribed(t *testing.T) {
	v := variable(t, "MULTIDB_OPEN_CONNS")
	for _, want := range []string{"`DB_MAX_CONNS` per tenant", "at most 3/4 of the server's `max_connections`", "superuser reserve", "at least `DB_MAX_CONNS`"} {
		if !strings.Contains(v.Default, want) {
			t.Errorf("MULTIDB_OPEN_CONNS Default = %q, want it to say %q", v.Default, want)
		}
	}
	if v.Value != "" {
		t.Errorf("MULTIDB_OPEN_CONNS Value = %q, want none: the default depends on the server", v.Value)
	}
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{nil, 0}, // derived by strategy when it opens
		{map[string]string{"MULTIDB_OPEN_CONNS": "64"}, 64},
	} {
		c, err := Load(env(tc.env))
		if err != nil || c.Strategy.TenantConns != tc.want {
			t.Errorf("Load(%v).TenantConns = %d, %v; want %d", tc.env, c.Strategy.TenantConns, err, tc.want)
		}
	}
}

func TestMaxConnsDefaultIsDescribed(t *testing.T) {
	v := variable(t, "DB_MAX_CONNS")
	m := regexp.MustCompile(`^(\d+) x cores, at least (\d+)$`).FindStringSubmatch(v.Default)
	if m == nil {
		t.Fatalf("DB_MAX_CONNS Default = %q, want \"<n> x cores, at least <m>\"", v.Default)
	}
	perCore, least := mustAtoi(t, m[1]), mustAtoi(t, m[2])
	c, err := Load(env(nil))
	if want := max(least, perCore*runtime.NumCPU()); err != nil || c.Strategy.MaxConns != want {
		t.Errorf("Load(empty).MaxConns = %d, %v on %d cores; DB_MAX_CONNS's Default %q says %d", c.Strategy.MaxConns, err, runtime.NumCPU(), v.Default, want)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRoleDefaultsAreDescribed(t *testing.T) {
	for _, database := range []string{"", "tenancy", "acme", "shop_2"} {
		c, err := Load(env(map[string]string{"PGDATABASE": database}))
		if err != nil {
			t.Fatalf("Load(PGDATABASE=%q): %v", database, err)
		}
		if database == "" {
			database = variable(t, "PGDATABASE").Value
		}
		for _, r := range []struct{ name, got string }{
			{"APP_DB_USER", c.Strategy.AppUser},
			{"READER_DB_USER", c.Strategy.ReaderUser},
		} {
			d := variable(t, r.name).Default
			if want := strings.ReplaceAll(strings.Trim(d, "`"), "<PGDATABASE>", database); r.got != want {
				t.Errorf("Load(PGDATABASE=%q) %s = %q; its Default %q says %q", database, r.name, r.got, d, want)
			}
		}
	}
}
