// Package pgsettings reads the PostgreSQL setting that bounds how many
// tenants one server can serve, max_connections, and words how to raise it.
// The project changes no server's settings itself (scripts/ensure-postgres.sh
// tunes only a cluster it created), so the commands that run multidb with
// many tenants warn instead, with the command that fixes it.
package pgsettings

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// Server is what a PostgreSQL server allows, as read at one moment.
type Server struct {
	MaxConnections int // max_connections
	Reserved       int // superuser_reserved_connections
	InUse          int // client connections open when read
	// Cluster is cluster_name: "15/main" for a Debian cluster, which
	// pg_ctlcluster restarts by that name; often empty elsewhere.
	Cluster string
}

// Read connects to dsn and reads the server's connection settings.
func Read(ctx context.Context, dsn string) (Server, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return Server{}, fmt.Errorf("read max_connections: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	var s Server
	err = c.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
			current_setting('superuser_reserved_connections')::int,
			(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int,
			current_setting('cluster_name')`).Scan(&s.MaxConnections, &s.Reserved, &s.InUse, &s.Cluster)
	if err != nil {
		return Server{}, fmt.Errorf("read max_connections: %w", err)
	}
	return s, nil
}

// Free is how many more connections roles other than superusers may open
// now.
func (s Server) Free() int {
	return s.MaxConnections - s.Reserved - s.InUse
}

// MultiDBConnections is the max_connections that multidb with this many
// tenants wants under load, on a server that reserves reserved connections
// for superusers: about two open connections per tenant (100 tenants at 16
// concurrent requests settled at about 215, as two requests for one tenant
// meet), and a multidb server keeps at most three quarters of what the
// server allows (strategy.Options.TenantConns); rounded up to 50, so 300
// for 100 tenants. Below it, tenants take turns with connections and each
// turn opens a new one: 99 req/s for 100 tenants at max_connections 100,
// against about 3,000 at 300. scripts/ensure-postgres.sh (want_conns)
// applies the same rule.
func MultiDBConnections(tenants, reserved int) int {
	n := (8*max(0, tenants)+2)/3 + reserved
	return (n + 49) / 50 * 50
}

// debianCluster is a cluster_name as Debian's pg_createcluster sets it.
var debianCluster = regexp.MustCompile(`^(\d+)/([A-Za-z0-9_.-]+)$`)

// RaiseConnections says how to set max_connections to n on s: the
// statement, and the restart it needs to take effect.
func (s Server) RaiseConnections(n int) string {
	restart := "restart PostgreSQL"
	if m := debianCluster.FindStringSubmatch(s.Cluster); m != nil {
		restart += fmt.Sprintf(" (on Debian: sudo pg_ctlcluster %s %s restart)", m[1], m[2])
	}
	return fmt.Sprintf("as a superuser, ALTER SYSTEM SET max_connections = %d; then %s", n, restart)
}

// MultiDBWarning is a warning for a run of multidb with tenants tenants
// under load on s, or "" when s allows what it wants.
func (s Server) MultiDBWarning(tenants int) string {
	want := MultiDBConnections(tenants, s.Reserved)
	if s.MaxConnections >= want {
		return ""
	}
	return fmt.Sprintf("PostgreSQL's max_connections is %d; multidb with %d tenants under load wants about %d "+
		"(about 2 open connections per tenant). With fewer, tenants take turns with connections and each turn "+
		"opens a new one, so multidb's figures measure connecting as much as serving. To raise it: %s.",
		s.MaxConnections, tenants, want, s.RaiseConnections(want))
}

// ConnectionsWarning is a warning for a job that opens up to need
// connections at once, or "" when s has that many free.
func (s Server) ConnectionsWarning(need int, job string) string {
	free := s.Free()
	if free >= need {
		return ""
	}
	want := (s.MaxConnections + need - free + 49) / 50 * 50
	return fmt.Sprintf("PostgreSQL has %d connections free (max_connections %d, %d reserved for superusers, %d in use); "+
		"%s opens up to %d at once and may fail with \"too many clients\". Close other clients, or raise it: %s.",
		free, s.MaxConnections, s.Reserved, s.InUse, job, need, s.RaiseConnections(want))
}
