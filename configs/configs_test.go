package configs

import (
	"slices"
	"strings"
	"testing"

	"tenancy/strategy"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load(empty) error: %v", err)
	}
	o := c.Strategy
	checks := []struct{ name, got, want string }{
		{"Strategy", o.Strategy, strategy.SingleSchema},
		{"Host", o.Host, DefaultHost},
		{"AdminUser", o.AdminUser, "postgres"},
		{"Database", o.Database, "tenancy"},
		{"AppUser", o.AppUser, "tenancy_app"},
		{"ReaderUser", o.ReaderUser, "tenancy_reader"},
		{"BaseDomain", c.BaseDomain, "localhost"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("Load(empty).%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if !c.AllTenantsView {
		t.Error("Load(empty).AllTenantsView = false, want on by default")
	}
	if !c.Metrics {
		t.Error("Load(empty).Metrics = false, want on by default")
	}
	if o.Port != 5432 || o.TenantCount != 5 {
		t.Errorf("Load(empty) port, tenant count = %d, %d, want 5432, 5", o.Port, o.TenantCount)
	}
	if err := c.RequireSecretKey(); err == nil {
		t.Error("RequireSecretKey() with no SECRET_KEY = nil, want an error")
	}
}

func TestLoadDerivesRoleNamesFromDatabase(t *testing.T) {
	c, err := Load(env(map[string]string{"PGDATABASE": "acme", "STRATEGY": "multidb", "MULTIDB_COUNT": "7", "SECRET_KEY": strings.Repeat("k", 16)}))
	if err != nil {
		t.Fatalf("Load error: %v", err)
	}
	if c.Strategy.AppUser != "acme_app" || c.Strategy.ReaderUser != "acme_reader" || c.Strategy.TenantCount != 7 {
		t.Errorf("Load = %+v, want acme_app, acme_reader, 7 tenants", c.Strategy)
	}
	if err := c.RequireSecretKey(); err != nil {
		t.Errorf("RequireSecretKey() = %v, want nil", err)
	}
}

func TestLoadQueryExecModeForPgBouncer(t *testing.T) {
	c, err := Load(env(map[string]string{"DB_QUERY_EXEC_MODE": "exec"}))
	if err != nil || c.Strategy.QueryExecMode != "exec" {
		t.Errorf("Load(DB_QUERY_EXEC_MODE=exec) = %q, %v, want exec", c.Strategy.QueryExecMode, err)
	}
}

// Worker reads are on unless CITUS_WORKER_READS turns them off.
func TestLoadCitusWorkerReads(t *testing.T) {
	for _, tt := range []struct {
		value       string
		coordinator bool
	}{{"", false}, {"on", false}, {"yes", false}, {"off", true}, {"FALSE", true}, {"0", true}} {
		vars := map[string]string{}
		if tt.value != "" {
			vars["CITUS_WORKER_READS"] = tt.value
		}
		c, err := Load(env(vars))
		if err != nil || c.Strategy.CoordinatorReads != tt.coordinator {
			t.Errorf("Load(CITUS_WORKER_READS=%q): CoordinatorReads = %v, %v; want %v", tt.value, c.Strategy.CoordinatorReads, err, tt.coordinator)
		}
	}
}

func TestLoadNamesTheWrongVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"STRATEGY": "schemas"}, "STRATEGY"},
		{map[string]string{"PGPORT": "five"}, "PGPORT"},
		{map[string]string{"PGPORT": "70000"}, "PGPORT"},
		{map[string]string{"MULTIDB_COUNT": "0"}, "MULTIDB_COUNT"},
		{map[string]string{"MULTIDB_COUNT": "-3"}, "MULTIDB_COUNT"},
		{map[string]string{"PGDATABASE": "Tenancy; drop"}, "PGDATABASE"},
		{map[string]string{"PGDATABASE": strings.Repeat("x", 60)}, "PGDATABASE"},
		{map[string]string{"APP_DB_USER": "postgres"}, "APP_DB_USER"},
		{map[string]string{"APP_DB_USER": "bad-name"}, "APP_DB_USER"},
		{map[string]string{"READER_DB_USER": "tenancy_app"}, "READER_DB_USER"},
		{map[string]string{"TZ": "Mars/Olympus"}, "TZ"},
		{map[string]string{"TZ": "Local"}, "TZ"},
		{map[string]string{"BASE_DOMAIN": "exa mple.com"}, "BASE_DOMAIN"},
		{map[string]string{"PGSSLMODE": "sometimes"}, "PGSSLMODE"},
		{map[string]string{"DB_MAX_CONNS": "1"}, "DB_MAX_CONNS"},
		{map[string]string{"ALL_TENANTS_VIEW": "maybe"}, "ALL_TENANTS_VIEW"},
		{map[string]string{"METRICS": "sometimes"}, "METRICS"},
		{map[string]string{"CITUS_WORKER_READS": "coordinator"}, "CITUS_WORKER_READS"},
		{map[string]string{"DB_QUERY_EXEC_MODE": "prepared"}, "DB_QUERY_EXEC_MODE"},
	}
	for _, tt := range tests {
		_, err := Load(env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%v) error = %v, want one naming %s", tt.env, err, tt.want)
		}
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{"STRATEGY": "x", "PGPORT": "y", "TZ": "z"}))
	if err == nil {
		t.Fatal("Load with three bad variables = nil error")
	}
	for _, name := range []string{"STRATEGY", "PGPORT", "TZ"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Load error %q does not name %s", err, name)
		}
	}
}

func TestLoadBlamesOnlyTheVariableSet(t *testing.T) {
	_, err := Load(env(map[string]string{"PGDATABASE": "Foo"}))
	if err == nil || !strings.Contains(err.Error(), "PGDATABASE") {
		t.Fatalf("Load(PGDATABASE=Foo) = %v, want an error naming PGDATABASE", err)
	}
	for _, derived := range []string{"APP_DB_USER", "READER_DB_USER"} {
		if strings.Contains(err.Error(), derived) {
			t.Errorf("Load(PGDATABASE=Foo) error %q also blames %s, which was not set", err, derived)
		}
	}
}

func TestDefaultSSLModeIsOffOnLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "disable"},
		{map[string]string{"PGHOST": "127.0.0.1"}, "disable"},
		{map[string]string{"PGHOST": "127.0.0.2"}, "disable"},
		{map[string]string{"PGHOST": "::1"}, "disable"},
		{map[string]string{"PGHOST": "localhost"}, "disable"},
		{map[string]string{"PGHOST": "/var/run/postgresql"}, "disable"},
		{map[string]string{"PGHOST": "db.example.com"}, "prefer"},
		{map[string]string{"PGHOST": "10.0.0.5"}, "prefer"},
		{map[string]string{"PGHOST": "127.0.0.1", "PGSSLMODE": "require"}, "require"},
		{map[string]string{"PGHOST": "db.example.com", "PGSSLMODE": "verify-full"}, "verify-full"},
	} {
		c, err := Load(env(tc.env))
		if err != nil {
			t.Fatalf("Load(%v): %v", tc.env, err)
		}
		if c.Strategy.SSLMode != tc.want {
			t.Errorf("Load(%v).SSLMode = %q, want %q", tc.env, c.Strategy.SSLMode, tc.want)
		}
	}
}

func TestLoadSecretKeyFallbacks(t *testing.T) {
	k := strings.Repeat("k", MinSecretKeyLength)
	for _, tc := range []struct {
		raw     string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"old-key-0123456789", []string{"old-key-0123456789"}, false},
		{" a-old-key-0123456789, b-old-key-0123456789\nc-old-key-0123456789 ", []string{"a-old-key-0123456789", "b-old-key-0123456789", "c-old-key-0123456789"}, false},
		{"old-key-0123456789,short", []string{"old-key-0123456789", "short"}, true},
	} {
		c, err := Load(env(map[string]string{"SECRET_KEY": k, "SECRET_KEY_FALLBACKS": tc.raw}))
		if err != nil {
			t.Fatalf("Load(SECRET_KEY_FALLBACKS=%q): %v", tc.raw, err)
		}
		if !slices.Equal(c.SecretKeyFallbacks, tc.want) {
			t.Errorf("Load(SECRET_KEY_FALLBACKS=%q).SecretKeyFallbacks = %q, want %q", tc.raw, c.SecretKeyFallbacks, tc.want)
		}
		if err := c.RequireSecretKey(); (err != nil) != tc.wantErr {
			t.Errorf("RequireSecretKey() with SECRET_KEY_FALLBACKS=%q = %v, want an error: %v", tc.raw, err, tc.wantErr)
		}
	}
}
