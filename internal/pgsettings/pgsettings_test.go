package pgsettings

import (
	"context"
	"strings"
	"testing"

	"tenancy/internal/pgtest"
)

func TestMultiDBConnections(t *testing.T) {
	for _, tc := range []struct {
		tenants, reserved, want int
	}{
		{0, 3, 50},
		{5, 3, 50},     // make up's sample tenants: the default 100 is plenty
		{40, 3, 150},   // 107 + 3
		{100, 3, 300},  // the benchmarks' 100 tenants: 267 + 3
		{100, 20, 300}, // 287, still under 300
		{110, 3, 300},  // 294
		{112, 3, 350},  // 302
		{1000, 3, 2700},
	} {
		if got := MultiDBConnections(tc.tenants, tc.reserved); got != tc.want {
			t.Errorf("MultiDBConnections(%d, %d) = %d, want %d", tc.tenants, tc.reserved, got, tc.want)
		}
	}
}

func TestMultiDBWarning(t *testing.T) {
	for _, tc := range []struct {
		name    string
		server  Server
		tenants int
		want    []string // all in the warning; none: no warning
		not     []string
	}{
		{"default server, 100 tenants", Server{MaxConnections: 100, Reserved: 3, Cluster: "15/main"}, 100,
			[]string{"max_connections is 100", "100 tenants", "about 300", "ALTER SYSTEM SET max_connections = 300", "sudo pg_ctlcluster 15 main restart"}, nil},
		{"not a Debian cluster", Server{MaxConnections: 100, Reserved: 3}, 100,
			[]string{"ALTER SYSTEM SET max_connections = 300", "then restart PostgreSQL."}, []string{"pg_ctlcluster"}},
		{"a cluster name that is not Debian's", Server{MaxConnections: 100, Reserved: 3, Cluster: "prod east"}, 100,
			[]string{"restart PostgreSQL."}, []string{"pg_ctlcluster"}},
		{"enough", Server{MaxConnections: 300, Reserved: 3, Cluster: "15/main"}, 100, nil, nil},
		{"few tenants", Server{MaxConnections: 100, Reserved: 3}, 5, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.server.MultiDBWarning(tc.tenants)
			if len(tc.want) == 0 && got != "" {
				t.Errorf("MultiDBWarning(%d) = %q, want none", tc.tenants, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("MultiDBWarning(%d) = %q, want %q in it", tc.tenants, got, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("MultiDBWarning(%d) = %q, want no %q in it", tc.tenants, got, n)
				}
			}
		})
	}
}

func TestConnectionsWarning(t *testing.T) {
	for _, tc := range []struct {
		server Server
		need   int
		want   string // in the warning; empty: no warning
	}{
		{Server{MaxConnections: 100, Reserved: 3, InUse: 10}, 20, ""},
		{Server{MaxConnections: 100, Reserved: 3, InUse: 80}, 20, "PostgreSQL has 17 connections free (max_connections 100, 3 reserved for superusers, 80 in use); seeding opens up to 20"},
		{Server{MaxConnections: 100, Reserved: 3, InUse: 95}, 20, "ALTER SYSTEM SET max_connections = 150"},
	} {
		got := tc.server.ConnectionsWarning(tc.need, "seeding")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%+v.ConnectionsWarning(%d) = %q, want %q", tc.server, tc.need, got, tc.want)
		}
	}
}

func TestRead(t *testing.T) {
	pgtest.Require(t)
	s, err := Read(context.Background(), pgtest.DSN("", "", "postgres"))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if s.MaxConnections < 1 || s.Reserved < 0 || s.InUse < 1 || s.Free() >= s.MaxConnections {
		t.Errorf("Read = %+v: want max_connections, a reserve, this connection in use, and fewer free than allowed", s)
	}
}
