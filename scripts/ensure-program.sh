#!/usr/bin/env bash
# Usage: ensure-program.sh <program> <debian package>
# Makes sure a program the tests need is installed, from Debian's package:
# pgbouncer (the tests start PgBouncer processes of their own, with a
# generated configuration on free loopback ports; the package's service is
# not used), wrk (the load generator `tenancy compare` prefers) and
# chromium (the browser tests drive it headless).
set -euo pipefail

program=$1
package=$2
say() { printf 'ensure-program: %s\n' "$*"; }

found() { command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ]; }

if found; then
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

say "$program is not installed; installing Debian's $package package"
as_root apt-get update -qq
# Without the packages it only recommends: the tests run the program, and
# chromium alone recommends a desktop's worth (udev, avahi, upower, a
# printer dialog) that would double the time a fresh machine spends here.
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null
if ! found; then
  say "installing $package did not give a $program program; install it by hand (apt-get install $package)"
  exit 1
fi
say "$package installed"
