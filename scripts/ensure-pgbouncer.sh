#!/usr/bin/env bash
# Makes sure the pgbouncer program is installed (Debian's pgbouncer package)
# for the tests that put PgBouncer in transaction pooling mode between the
# server and PostgreSQL. The tests start PgBouncer processes of their own,
# with a generated configuration on free loopback ports; the package's own
# service is not used.
set -euo pipefail

say() { printf 'ensure-pgbouncer: %s\n' "$*"; }

if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

say "PgBouncer is not installed; installing Debian's pgbouncer package"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  say "installing pgbouncer did not give a pgbouncer program; install it by hand (apt-get install pgbouncer)"
  exit 1
fi
say "$(/usr/sbin/pgbouncer --version 2>/dev/null | head -n 1 || pgbouncer --version | head -n 1) installed"
