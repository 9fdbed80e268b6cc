# Sourced by page-cost.sh and schema-ab.sh, after they define say(): the
# connection defaults (PG* as for tenancy itself), the server's role, how
# long and how wide each pgbench run is, where pgbench is, and admin(),
# psql as PGUSER that stops at the first error.
: "${PGHOST:=127.0.0.1}" "${PGPORT:=5432}" "${PGUSER:=postgres}" "${PGDATABASE:=tenancy}"
export PGHOST PGPORT PGUSER PGDATABASE
app=${APP_DB_USER:-${PGDATABASE}_app}
duration=${DURATION:-10}
clients=${CLIENTS:-8}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -n1)
pgbench=${PGBENCH:-$bin/pgbench}
[ -x "$pgbench" ] || { say "no pgbench (Debian's postgresql package has it); set PGBENCH"; exit 1; }
admin() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
