#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on PGHOST:PGPORT (default
# 127.0.0.1:5432) as PGUSER (default postgres): installs Debian's postgresql
# package when it is absent, creates a cluster when there is none, and
# starts it when it is down.
#
# It reconfigures and restarts only a cluster it created itself (see "Whose
# cluster" below). Such a cluster gets two settings that are too small for
# this project at their defaults, applied with one restart
# (TENANCY_TUNE_POSTGRES=0 leaves them alone), and trust authentication on
# loopback when it refuses the loopback connection:
#   max_connections 100 -> 300, or more for more tenants (want_conns):
#     multidb keeps connections open per tenant database; with fewer than
#     it uses, tenants take turns and each turn opens a new connection.
#   shared_buffers 128MB -> a quarter of memory, at most 1GB: the 2,000
#     accounts of the benchmarks are 250 MB, multidb's 100 tenants 840 MB.
# Any other server, a developer's own cluster above all, is left exactly as
# it is: when its max_connections is too small for what was asked (multidb
# with MULTIDB_COUNT tenants, when STRATEGY=multidb), the script says so and
# how to raise it, and changes nothing.
#
# Whose cluster: when this script runs pg_createcluster (or installs the
# postgresql package, which creates a cluster), it writes the file
# <config dir>/tenancy-created (/etc/postgresql/<version>/<name>/ on
# Debian) holding the new cluster's system identifier. A cluster is its own
# only while that file names the identifier of the server that answers.
# The identifier is drawn at initdb and never reused, so a marker left
# behind by pg_dropcluster (which deletes only the files it knows) cannot
# make a later cluster of the same name look like the script's. Delete the
# file to take a cluster back from the script.
set -euo pipefail

host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}
user=${PGUSER:-postgres}
# Debian's tools keep cluster configurations here; PG_CLUSTER_CONF_ROOT
# moves them (the tests use it for clusters of their own).
conf_root=${PG_CLUSTER_CONF_ROOT:-/etc/postgresql}
marker_name=tenancy-created

say() { printf 'ensure-postgres: %s\n' "$*"; }

can_connect() {
  PGCONNECT_TIMEOUT=3 psql -X -h "$host" -p "$port" -U "$user" -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

local_host=false
case "$host" in
  127.0.0.1|localhost|::1|/*) local_host=true ;;
esac

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# sql prints what a query returns, ignoring ~/.psqlrc.
sql() {
  psql -X -h "$host" -p "$port" -U "$user" -d postgres -Atqc "$1"
}

# number prints the setting $1 when it is a whole number, else nothing.
number() {
  local v
  v=$(sql "SELECT setting FROM pg_settings WHERE name = '$1'" 2>/dev/null || true)
  [[ "$v" =~ ^[0-9]+$ ]] && printf '%s' "$v"
  return 0
}

# memory_kb is the memory this machine (or its cgroup, if smaller) has.
memory_kb() {
  local kb limit
  kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || true)
  if [[ "$limit" =~ ^[0-9]+$ ]] && [ $(( limit / 1024 )) -lt "$kb" ]; then
    kb=$(( limit / 1024 ))
  fi
  printf '%s' "$kb"
}

# want_conns is the max_connections that multidb with $1 tenants under
# load wants, given $2 superuser_reserved_connections: about two open
# connections per tenant (100 tenants at 16 concurrent requests settle at
# about 215, as two requests for one tenant meet), and a multidb server
# keeps at most three quarters of what the server allows; rounded up to 50.
# 100 tenants: 300. internal/pgsettings.MultiDBConnections is the same rule.
want_conns() {
  local n=$(( (8 * $1 + 2) / 3 + ${2:-3} ))
  printf '%s' $(( (n + 49) / 50 * 50 ))
}

# tenants is how many multidb tenants the caller will serve: MULTIDB_COUNT
# (the server's own variable, 5 when unset, as in package configs) when
# STRATEGY is multidb, else none.
tenants() {
  if [ "${STRATEGY:-}" = multidb ] && [[ "${MULTIDB_COUNT:-5}" =~ ^[0-9]+$ ]]; then
    printf '%s' "${MULTIDB_COUNT:-5}"
  else
    printf 0
  fi
}

cluster_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  pg_lsclusters -h 2>/dev/null | awk -v p="$port" '$3 == p {print $1 "/" $2; exit}'
}

# cluster_field prints column $2 of pg_lsclusters (6: data directory) for
# cluster $1 (version/name).
cluster_field() {
  pg_lsclusters -h 2>/dev/null | awk -v v="${1%%/*}" -v n="${1#*/}" -v f="$2" '$1 == v && $2 == n {print $f}'
}

marker() { printf '%s/%s/%s' "$conf_root" "$1" "$marker_name"; }

# marked_id prints the system identifier the marker of cluster $1 holds.
marked_id() {
  [ -n "$1" ] || return 0
  awk -F= '$1 == "system_identifier" {print $2}' "$(marker "$1")" 2>/dev/null || true
}

# data_dir_id prints the system identifier in the control file of cluster
# $1, which it reads as root: the cluster need not be running.
data_dir_id() {
  local version=${1%%/*} data_dir
  data_dir=$(cluster_field "$1" 6)
  [ -n "$data_dir" ] || return 0
  as_root env LC_ALL=C "/usr/lib/postgresql/$version/bin/pg_controldata" "$data_dir" 2>/dev/null |
    awk -F: '/^Database system identifier/ {gsub(/ /, "", $2); print $2}'
}

# mark_created records that this script made cluster $1 (see the top).
mark_created() {
  local id
  id=$(data_dir_id "$1")
  if ! [[ "$id" =~ ^[0-9]+$ ]]; then
    say "could not read the system identifier of new cluster $1; it is not marked as tenancy's, so its settings will be left alone"
    return 0
  fi
  printf '# Created by tenancy'"'"'s scripts/ensure-postgres.sh on %s. While this file\n# names the cluster'"'"'s system identifier, that script may change its settings\n# and restart it; delete the file to stop that.\nsystem_identifier=%s\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$id" | as_root tee "$(marker "$1")" >/dev/null
}

# created_here says whether the server on the port is cluster $1 and this
# script created it.
created_here() {
  local want
  want=$(marked_id "$1")
  [ -n "$want" ] && [ "$(sql 'SELECT system_identifier FROM pg_control_system()' 2>/dev/null || true)" = "$want" ]
}

# name_is_free says whether pg_createcluster may make cluster $1/$2 without
# meeting anything of another cluster: it would adopt a data directory it
# finds in place, and pg_dropcluster deletes the log of that name.
name_is_free() {
  ! pg_lsclusters -h 2>/dev/null | awk '{print $1 "/" $2}' | grep -qx "$1/$2" &&
    [ ! -e "$conf_root/$1/$2/postgresql.conf" ] &&
    [ ! -e "/var/lib/postgresql/$1/$2" ] &&
    [ ! -e "/var/log/postgresql/postgresql-$1-$2.log" ]
}

# restart_hint is the command that restarts the server on the port: cluster
# $1's through pg_ctlcluster when it is a Debian cluster, else pg_ctl on
# the server's data directory (which a superuser may read), else words.
restart_hint() {
  local sudo="" dir
  [ "$(id -u)" -eq 0 ] || sudo="sudo "
  if [ -n "$1" ]; then
    printf '%spg_ctlcluster %s %s restart' "$sudo" "${1%%/*}" "${1#*/}"
    return 0
  fi
  dir=$(sql 'SHOW data_directory' 2>/dev/null || true)
  if [ -n "$dir" ]; then
    printf 'pg_ctl -D %s restart (as the user the server runs as)' "$dir"
  else
    printf 'restart the server as you usually do'
  fi
}

# advise says which settings of the server on the port are below what was
# asked ($1 max_connections, $2 shared_buffers in kB, 0 for no wish; $3
# cluster or empty; $4 why nothing is changed), and how to raise them. It
# changes nothing.
advise() {
  local want_conns=$1 want_buffers_kb=$2 cluster=$3 why=$4 conns buffers stmts=() n
  conns=$(number max_connections)
  buffers=$(number shared_buffers) # in 8 kB pages
  n=$(tenants)
  if [ -n "$conns" ] && [ "$conns" -lt "$want_conns" ]; then
    if [ "$n" -gt 0 ]; then
      say "max_connections is $conns; multidb with $n tenants under load wants about $want_conns (about 2 open connections per tenant, and a multidb server keeps at most 3/4 of what PostgreSQL allows); with fewer, tenants take turns and each turn opens a new connection"
    else
      say "max_connections is $conns; tenancy's benchmarks (multidb with 100 tenants) want about $want_conns"
    fi
    stmts+=("ALTER SYSTEM SET max_connections = $want_conns")
  fi
  if [ -n "$buffers" ] && [ "$want_buffers_kb" -gt 0 ] && [ $(( buffers * 8 )) -lt "$want_buffers_kb" ]; then
    say "shared_buffers is $(( buffers * 8 / 1024 ))MB; the benchmarks' data (up to 840 MB) wants $(( want_buffers_kb / 1024 ))MB"
    stmts+=("ALTER SYSTEM SET shared_buffers = '$(( want_buffers_kb / 1024 ))MB'")
  fi
  [ ${#stmts[@]} -gt 0 ] || return 0
  local stmt s
  stmt=$(printf '%s; ' "${stmts[@]}")
  s="to raise it yourself: psql -h $host -p $port -U $user -d postgres -c \"${stmt%; }\" (as a superuser), then restart: $(restart_hint "$cluster")"
  [ ${#stmts[@]} -gt 1 ] && s="to raise them yourself:${s#to raise it yourself:}"
  say "$s"
  say "leaving the server on port $port as it is: $why"
}

# check compares the server on the port (Debian cluster $1, or empty) with
# what this project wants, and tunes it when it is the script's own; see the
# top of this file.
check() {
  local cluster=$1 n want_buffers_kb
  n=$(tenants)
  if ! created_here "$cluster"; then
    advise "$(want_conns "$n" "$(number superuser_reserved_connections)")" 0 "$cluster" "this script did not create it"
    return 0
  fi
  # Its own cluster is sized for the benchmarks (100 multidb tenants) or
  # for what was asked, whichever is more.
  want_buffers_kb=$(( $(memory_kb) / 4 ))
  [ "$want_buffers_kb" -gt 1048576 ] && want_buffers_kb=1048576
  local want_c
  want_c=$(want_conns $(( n > 100 ? n : 100 )) "$(number superuser_reserved_connections)")
  if [ "${TENANCY_TUNE_POSTGRES:-1}" = 0 ]; then
    advise "$want_c" "$want_buffers_kb" "$cluster" "TENANCY_TUNE_POSTGRES=0"
    return 0
  fi
  tune "$cluster" "$want_c" "$want_buffers_kb"
}

# tune raises max_connections to $2 and shared_buffers to $3 kB on the
# script's own cluster $1, restarting it when either changes. It changes
# nothing, and says why, unless it can do all of it: the admin role must be
# a superuser (ALTER SYSTEM), this script must be able to restart the
# cluster (root or sudo without a password), and the server on the port
# must be that cluster.
tune() {
  local cluster=$1 want_conns=$2 want_buffers_kb=$3 version=${1%%/*} name=${1#*/} conns buffers changed="" data_dir
  data_dir=$(cluster_field "$cluster" 6)
  conns=$(number max_connections)
  buffers=$(number shared_buffers) # in 8 kB pages
  if [ -z "$conns" ] || [ -z "$buffers" ]; then
    say "not tuning PostgreSQL: could not read its settings"
    return 0
  fi
  [ "$conns" -lt "$want_conns" ] && changed="max_connections $conns -> $want_conns"
  [ $(( buffers * 8 )) -lt "$want_buffers_kb" ] &&
    changed="${changed:+$changed, }shared_buffers $(( buffers * 8 / 1024 ))MB -> $(( want_buffers_kb / 1024 ))MB"
  [ -n "$changed" ] || return 0
  local skip=""
  if [ "$(sql 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' 2>/dev/null || true)" != t ]; then
    skip="$user is not a superuser"
  elif [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
    skip="restarting the cluster needs root or sudo without a password"
  elif [ "$(sql 'SHOW data_directory' 2>/dev/null || true)" != "$data_dir" ]; then
    skip="the server on port $port is not cluster $cluster"
  fi
  if [ -n "$skip" ]; then
    advise "$want_conns" "$want_buffers_kb" "$cluster" "$skip"
    return 0
  fi
  [ "$conns" -lt "$want_conns" ] && sql "ALTER SYSTEM SET max_connections = $want_conns" >/dev/null
  [ $(( buffers * 8 )) -lt "$want_buffers_kb" ] && sql "ALTER SYSTEM SET shared_buffers = '${want_buffers_kb}kB'" >/dev/null
  say "raising $changed on cluster $cluster, which this script created (TENANCY_TUNE_POSTGRES=0 to leave them); restarting it"
  if restart_cluster "$version" "$name"; then
    return 0
  fi
  # Back to the settings it ran with, and up again.
  say "PostgreSQL cluster $cluster did not come back with the new settings; undoing them (see its log, $(cluster_field "$cluster" 7))"
  as_root sed -i -e '/^max_connections = /d' -e '/^shared_buffers = /d' "$data_dir/postgresql.auto.conf"
  restart_cluster "$version" "$name" || { say "PostgreSQL cluster $cluster does not start; see its log"; exit 1; }
}

# restart_cluster restarts a Debian cluster and waits until it answers.
# pg_ctlcluster goes through systemd where systemd runs the cluster.
restart_cluster() {
  as_root pg_ctlcluster "$1" "$2" restart || return 1
  for _ in $(seq 1 60); do
    can_connect && return 0
    sleep 0.5
  done
  return 1
}

if command -v psql >/dev/null 2>&1 && can_connect; then
  if $local_host; then
    check "$(cluster_on_port)"
  fi
  exit 0
fi

if ! $local_host; then
  say "cannot connect to PostgreSQL at $host:$port as $user, and it is not a local server this script can manage"
  exit 1
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  # The package creates a cluster as it installs: that one is this
  # script's doing too, unless its configuration was there before (a
  # package removed without purging leaves it).
  before=$(ls -d "$conf_root"/*/* 2>/dev/null || true)
  say "PostgreSQL is not installed; installing Debian's postgresql package"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
  for c in $(pg_lsclusters -h 2>/dev/null | awk '{print $1 "/" $2}'); do
    if ! grep -qxF "$conf_root/$c" <<<"$before"; then
      mark_created "$c"
    fi
  done
fi

# The cluster that listens on $port, or a new one.
cluster=$(cluster_on_port)
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  name=""
  for candidate in main "tenancy-$port"; do
    if name_is_free "$version" "$candidate"; then
      name=$candidate
      break
    fi
  done
  if [ -z "$name" ]; then
    say "no PostgreSQL cluster listens on port $port, and the names main and tenancy-$port are taken (a cluster, its data directory or its log); free one or set PGPORT to a cluster's port"
    exit 1
  fi
  say "creating PostgreSQL cluster $version/$name on port $port"
  as_root pg_createcluster --port "$port" "$version" "$name" >/dev/null
  cluster=$version/$name
  mark_created "$cluster"
fi
version=${cluster%%/*}
name=${cluster#*/}

status=$(cluster_field "$cluster" 4)
if [ "$status" != "online" ]; then
  say "starting PostgreSQL cluster $cluster"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
fi

for _ in $(seq 1 60); do
  pg_isready -q -h "$host" -p "$port" && break
  sleep 0.5
done
if ! pg_isready -q -h "$host" -p "$port"; then
  say "PostgreSQL cluster $cluster did not start; see $(cluster_field "$cluster" 7)"
  exit 1
fi

if ! can_connect; then
  # A fresh Debian cluster asks for a password over TCP and the postgres
  # role has none. On the script's own development cluster, trust loopback
  # only; another cluster's authentication is its owner's to choose.
  id=$(marked_id "$cluster")
  if [ -z "$id" ] || [ "$(data_dir_id "$cluster")" != "$id" ]; then
    say "PostgreSQL cluster $cluster refuses $user@$host:$port, and this script did not create it, so it leaves its authentication alone; set PGUSER/PGPASSWORD for a role that may create roles and databases, or allow the connection in its pg_hba.conf"
    exit 1
  fi
  hba=$(as_root su postgres -c "unset PGHOST PGUSER PGDATABASE PGPASSWORD; psql -X -p $port -Atqc 'show hba_file'")
  if ! as_root grep -q '^# tenancy: trust loopback' "$hba"; then
    say "allowing trust authentication on loopback in $hba (development cluster this script created)"
    as_root sed -i "1i # tenancy: trust loopback for local development\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust" "$hba"
    as_root su postgres -c "unset PGHOST PGUSER PGDATABASE PGPASSWORD; psql -X -p $port -Atqc 'select pg_reload_conf()'" >/dev/null
  fi
fi

if ! can_connect; then
  say "PostgreSQL runs but refuses $user@$host:$port; set PGUSER/PGPASSWORD for a role that may create roles and databases"
  exit 1
fi
check "$cluster"
say "PostgreSQL cluster $cluster is up on $host:$port"
