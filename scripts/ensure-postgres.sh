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

setting() {
  psql -h "$host" -p "$port" -U "$user" -d postgres -Atqc "SELECT setting FROM pg_settings WHERE name = '$1'"
}

# tune raises max_connections and shared_buffers (see the top of this file)
# on the local cluster $1 (version/name), restarting it when either changes.
tune() {
  [ "${TENANCY_TUNE_POSTGRES:-1}" = 0 ] && return 0
  [ -n "$1" ] || return 0
  local want_conns=300 mem_kb want_buffers_kb changed=""
  mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  want_buffers_kb=$(( mem_kb / 4 < 1048576 ? mem_kb / 4 : 1048576 ))
  if [ "$(setting max_connections)" -lt "$want_conns" ]; then
    psql -h "$host" -p "$port" -U "$user" -d postgres -Atqc "ALTER SYSTEM SET max_connections = $want_conns" >/dev/null
    changed="max_connections $(setting max_connections) -> $want_conns"
  fi
  # shared_buffers is counted in 8 kB pages.
  if [ "$(( $(setting shared_buffers) * 8 ))" -lt "$want_buffers_kb" ]; then
    psql -h "$host" -p "$port" -U "$user" -d postgres -Atqc "ALTER SYSTEM SET shared_buffers = '${want_buffers_kb}kB'" >/dev/null
    changed="${changed:+$changed, }shared_buffers $(( $(setting shared_buffers) * 8 / 1024 ))MB -> $(( want_buffers_kb / 1024 ))MB"
  fi
  [ -n "$changed" ] || return 0
  say "raising $changed for tenancy (TENANCY_TUNE_POSTGRES=0 to leave them); restarting PostgreSQL cluster $1"
  as_root pg_ctlcluster --skip-systemctl-redirect "${1%%/*}" "${1#*/}" restart
  for _ in $(seq 1 60); do
    can_connect && return 0
    sleep 0.5
  done
  say "PostgreSQL cluster $1 did not come back after the restart; see /var/log/postgresql/postgresql-${1%%/*}-${1#*/}.log"
  exit 1
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
  hba=$(as_root su postgres -c "psql -p $port -Atqc 'show hba_file'")
  if ! as_root grep -q '^# tenancy: trust loopback' "$hba"; then
    say "allowing trust authentication on loopback in $hba (development cluster)"
    as_root sed -i "1i # tenancy: trust loopback for local development\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust" "$hba"
    as_root su postgres -c "psql -p $port -Atqc 'select pg_reload_conf()'" >/dev/null
  fi
fi

if ! can_connect; then
  say "PostgreSQL runs but refuses $user@$host:$port; set PGUSER/PGPASSWORD for a role that may create roles and databases"
  exit 1
fi
tune "$cluster"
say "PostgreSQL cluster $cluster is up on $host:$port"
