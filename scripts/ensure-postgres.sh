#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on PGHOST:PGPORT (default
# 127.0.0.1:5432) as PGUSER (default postgres): installs Debian's postgresql
# package when it is absent, creates a cluster when there is none, starts it
# when it is down, and, for a local development cluster that refuses the
# loopback connection, allows trust authentication on loopback only.
#
# On a local cluster it also raises two settings that are too small for
# this project at their defaults, and restarts the cluster once to apply
# them (TENANCY_TUNE_POSTGRES=0 leaves the cluster's settings alone):
#   max_connections 100 -> 300: multidb keeps a connection per tenant
#     database, so 100 tenants under load need more than 100 connections;
#     with fewer, tenants take turns and each turn opens a new connection.
#   shared_buffers 128MB -> a quarter of memory, at most 1GB: the 2,000
#     accounts of the benchmarks are 250 MB, multidb's 100 tenants 840 MB.
set -euo pipefail

host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}
user=${PGUSER:-postgres}

say() { printf 'ensure-postgres: %s\n' "$*"; }

can_connect() {
  PGCONNECT_TIMEOUT=3 psql -h "$host" -p "$port" -U "$user" -d postgres -Atqc 'select 1' >/dev/null 2>&1
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

# tune raises max_connections and shared_buffers (see the top of this file)
# on the local Debian cluster $1 (version/name), restarting it when either
# changes. It changes nothing, and says why, unless it can do all of it: the
# admin role must be a superuser (ALTER SYSTEM), this script must be able to
# restart the cluster (root or sudo without a password), and the server on
# the port must be that cluster.
tune() {
  [ "${TENANCY_TUNE_POSTGRES:-1}" = 0 ] && return 0
  [ -n "$1" ] || return 0
  local version=${1%%/*} name=${1#*/} want_conns=300 want_buffers_kb conns buffers changed="" data_dir
  data_dir=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $6}')
  want_buffers_kb=$(( $(memory_kb) / 4 ))
  [ "$want_buffers_kb" -gt 1048576 ] && want_buffers_kb=1048576
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
    skip="the server on port $port is not cluster $1"
  fi
  if [ -n "$skip" ]; then
    say "not raising $changed: $skip; multidb with many tenants needs more connections (see README, Performance)"
    return 0
  fi
  [ "$conns" -lt "$want_conns" ] && sql "ALTER SYSTEM SET max_connections = $want_conns" >/dev/null
  [ $(( buffers * 8 )) -lt "$want_buffers_kb" ] && sql "ALTER SYSTEM SET shared_buffers = '${want_buffers_kb}kB'" >/dev/null
  say "raising $changed for tenancy (TENANCY_TUNE_POSTGRES=0 to leave them); restarting PostgreSQL cluster $1"
  if restart_cluster "$version" "$name"; then
    return 0
  fi
  # Back to the settings it ran with, and up again.
  say "PostgreSQL cluster $1 did not come back with the new settings; undoing them (see /var/log/postgresql/postgresql-$version-$name.log)"
  as_root sed -i -e '/^max_connections = /d' -e '/^shared_buffers = /d' "$data_dir/postgresql.auto.conf"
  restart_cluster "$version" "$name" || { say "PostgreSQL cluster $1 does not start; see its log"; exit 1; }
}

# restart_cluster restarts a Debian cluster, through systemd where systemd
# runs, and waits until it answers.
restart_cluster() {
  if [ -d /run/systemd/system ]; then
    as_root systemctl restart "postgresql@$1-$2" || return 1
  else
    as_root pg_ctlcluster --skip-systemctl-redirect "$1" "$2" restart || return 1
  fi
  for _ in $(seq 1 60); do
    can_connect && return 0
    sleep 0.5
  done
  return 1
}

cluster_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  pg_lsclusters -h 2>/dev/null | awk -v p="$port" '$3 == p {print $1 "/" $2; exit}'
}

if command -v psql >/dev/null 2>&1 && can_connect; then
  if $local_host; then
    tune "$(cluster_on_port)"
  fi
  exit 0
fi

if ! $local_host; then
  say "cannot connect to PostgreSQL at $host:$port as $user, and it is not a local server this script can manage"
  exit 1
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  say "PostgreSQL is not installed; installing Debian's postgresql package"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
fi

# The cluster that listens on $port, or a new one.
cluster=$(cluster_on_port)
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  name=main
  if pg_lsclusters -h 2>/dev/null | awk '{print $1 "/" $2}' | grep -qx "$version/main"; then
    name=tenancy-$port
  fi
  say "creating PostgreSQL cluster $version/$name on port $port"
  as_root pg_createcluster --port "$port" "$version" "$name" >/dev/null
  cluster=$version/$name
fi
version=${cluster%%/*}
name=${cluster#*/}

status=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $4}')
if [ "$status" != "online" ]; then
  say "starting PostgreSQL cluster $cluster"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
fi

for _ in $(seq 1 60); do
  pg_isready -q -h "$host" -p "$port" && break
  sleep 0.5
done
if ! pg_isready -q -h "$host" -p "$port"; then
  say "PostgreSQL cluster $cluster did not start; see /var/log/postgresql/postgresql-$version-$name.log"
  exit 1
fi

if ! can_connect; then
  # A fresh Debian cluster asks for a password over TCP and the postgres role
  # has none. For this local development cluster, trust loopback only.
  hba=$(as_root su postgres -c "unset PGHOST PGUSER PGDATABASE PGPASSWORD; psql -X -p $port -Atqc 'show hba_file'")
  if ! as_root grep -q '^# tenancy: trust loopback' "$hba"; then
    say "allowing trust authentication on loopback in $hba (development cluster)"
    as_root sed -i "1i # tenancy: trust loopback for local development\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust" "$hba"
    as_root su postgres -c "unset PGHOST PGUSER PGDATABASE PGPASSWORD; psql -X -p $port -Atqc 'select pg_reload_conf()'" >/dev/null
  fi
fi

if ! can_connect; then
  say "PostgreSQL runs but refuses $user@$host:$port; set PGUSER/PGPASSWORD for a role that may create roles and databases"
  exit 1
fi
tune "$cluster"
say "PostgreSQL cluster $cluster is up on $host:$port"
