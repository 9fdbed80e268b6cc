#!/usr/bin/env bash
# What each of migration 00009's three changes costs on plain PostgreSQL:
# the policies without their sub-select, the keys that include account_id,
# and the count trigger written a tenant at a time. Each round times, with
# pgbench, the server's page read (page-statement.sql) and a write (a
# toggle, an insert and a delete, so the count trigger runs) on the
# schema as it is, then with each change undone in turn (its own lines of
# the migration's Down section) and done again (of its Up section), so
# that the figures alternate and drift in the machine's speed falls on
# every side. Point it at a singleschema database `tenancy setup` and
# `tenancy seed` made, on a server of your own: it alters the schema while
# it runs (and puts it back).
#
#   PGHOST=127.0.0.1 PGPORT=5432 PGDATABASE=tenancy ROUNDS=6 scripts/schema-ab.sh
set -euo pipefail
say() { printf 'schema-ab: %s\n' "$*" >&2; }

. "$(dirname "$0")/pgbench-common.sh"
rounds=${ROUNDS:-3}
here=$(dirname "$0")
migration=$here/../strategy/singleschema/migrations/00009_distributable.sql

[ "$(admin -c "SELECT count(*) FROM pg_extension WHERE extname = 'citus'")" = 0 ] ||
  { say "$PGDATABASE is on Citus: this measures plain PostgreSQL"; exit 1; }
first=$(admin -c "SELECT min(id) FROM accounts") && [ -n "$first" ] ||
  { say "no accounts in $PGDATABASE: run tenancy setup and tenancy seed first"; exit 1; }
last=$(admin -c "SELECT max(id) FROM accounts")

# part SECTION PART: the migration's lines of one change, in its Up or Down
# section: policy (the ALTER POLICY lines), keys (the ALTER TABLE
# statements) or trigger (the subtask_counts_apply function).
part() {
  awk -v want="$1" -v part="$2" '
    /^-- \+goose Up/ { sec = "up"; next }
    /^-- \+goose Down/ { sec = "down"; next }
    sec != want { next }
    /^-- \+goose StatementBegin/ { blk = 1; buf = ""; next }
    /^-- \+goose StatementEnd/ { blk = 0; if (part == "trigger" && buf ~ /subtask_counts_apply/) printf "%s", buf; next }
    blk { buf = buf $0 "\n"; next }
    /^--/ { next }
    part == "policy" && /^ALTER POLICY/ { print; next }
    part == "keys" && /^ALTER TABLE/ { in_stmt = 1 }
    part == "keys" && in_stmt { print; if ($0 ~ /;[[:space:]]*$/) in_stmt = 0 }
  ' "$migration"
}
for p in policy keys trigger; do
  for sec in up down; do
    [ -n "$(part $sec $p)" ] || { say "found no $p lines in the $sec section of $migration"; exit 1; }
  done
done

dir=$(mktemp -d)
restore=""
cleanup() { [ -z "$restore" ] || part up "$restore" | admin >/dev/null || say "could not put back $restore: run tenancy migrate"; rm -rf "$dir"; }
trap cleanup EXIT
{ printf '\\set t random(%d, %d)\n\\set off random(0, 9) * 10\n' "$first" "$last"
  echo '\startpipeline'; echo 'BEGIN;'; echo "SELECT set_config('app.tenant_id', :t::text, true);"
  grep -v '^--' "$here/page-statement.sql"; echo 'COMMIT;'; echo '\endpipeline'; } > "$dir/page.sql"
cat > "$dir/write.sql" <<SQL
\\set t random($first, $last)
BEGIN;
SELECT set_config('app.tenant_id', :t::text, true);
UPDATE subtasks SET is_complete = NOT is_complete WHERE account_id = :t AND id = (SELECT min(id) FROM subtasks WHERE account_id = :t);
INSERT INTO subtasks (account_id, task_id, name) SELECT account_id, id, 'schema-ab' FROM tasks WHERE account_id = :t ORDER BY id LIMIT 1;
DELETE FROM subtasks WHERE account_id = :t AND name = 'schema-ab';
COMMIT;
SQL
run() { # script -> transactions per second
  PGPASSWORD=${APP_DB_PASSWORD:-${PGPASSWORD:-}} "$pgbench" -n -M prepared -c "$clients" -j 2 -T "$duration" -U "$app" -f "$dir/$1.sql" 2>&1 |
    awk '/^tps/ {printf "%.0f", $3} /ERROR|aborted/ {print "error: " $0 > "/dev/stderr"; exit 1}'
}
settle() { admin -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null; }

say "$PGHOST:$PGPORT/$PGDATABASE, accounts $first-$last, $rounds rounds, $clients clients, ${duration}s each"
printf '%-6s %-28s %10s %10s\n' round schema "page/s" "writes/s"
for round in $(seq "$rounds"); do
  for p in none policy keys trigger; do
    label="00009 as it is"
    if [ "$p" != none ]; then
      label="without 00009's $p"
      restore=$p
      part down "$p" | admin >/dev/null
    fi
    settle
    printf '%-6s %-28s %10s %10s\n' "$round" "$label" "$(run page)" "$(run write)"
    if [ "$p" != none ]; then
      part up "$p" | admin >/dev/null
      restore=""
    fi
  done
done
