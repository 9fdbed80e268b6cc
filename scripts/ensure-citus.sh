#!/usr/bin/env bash
# Makes sure the Citus extension is installed into the local PostgreSQL, for
# the tests that run singleschema on a Citus cluster of throwaway local
# nodes. Debian packages no Citus, so it comes from ../shared/citus (a build
# for Debian bookworm's PostgreSQL 15) when that is there; elsewhere install
# Citus from Citus's own packages. When it cannot be installed this says so
# and exits 0: the Citus tests then skip, or fail with CI=true, each saying
# why, so nothing passes without having run.
set -euo pipefail
say() { printf 'ensure-citus: %s\n' "$*"; }

pg_config=${PG_CONFIG:-}
if [ -z "$pg_config" ]; then
  # The newest Debian PostgreSQL, as the tests' throwaway clusters use.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_config" ]; then pg_config=$d/pg_config; break; fi
  done
  pg_config=${pg_config:-$(command -v pg_config || true)}
fi
if [ -z "$pg_config" ] || [ ! -x "$pg_config" ]; then
  say "no pg_config (Debian's postgresql-server-dev-<version>): cannot tell whether Citus is installed; the Citus tests will say so"
  exit 0
fi
if [ -f "$("$pg_config" --sharedir)/extension/citus.control" ]; then
  exit 0
fi
installer="$(cd "$(dirname "$0")/.." && pwd)/../shared/citus/install.sh"
if [ ! -f "$installer" ]; then
  say "Citus is not installed and $installer is not there; install Citus from its own packages. The Citus tests will skip (fail with CI=true)"
  exit 0
fi
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
say "Citus is not installed; installing it with $installer"
if ! as_root env PG_CONFIG="$pg_config" bash "$installer"; then
  say "installing Citus failed; the Citus tests will skip (fail with CI=true)"
fi
