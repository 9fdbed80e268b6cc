#!/usr/bin/env bash
# Where a singleschema tenant page's time goes in the database, on plain
# PostgreSQL and on a Citus coordinator: pgbench runs the server's page
# read and simpler forms of it, each for DURATION seconds with CLIENTS
# connections, and prints their rates side by side (docs/citus.md reads
# them). Point it at a database `tenancy setup` and `tenancy seed` made:
#
#   PGHOST=127.0.0.1 PGPORT=5432 PGDATABASE=tenancy scripts/page-cost.sh
#
# APP_DB_USER and APP_DB_PASSWORD name the server's role, as for serve.
# It only reads, except on Citus, where it creates a distributed function
# for the last row and drops it again. The statement is the one the server
# sends today, from page-statement.sql.
set -euo pipefail
say() { printf 'page-cost: %s\n' "$*" >&2; }

. "$(dirname "$0")/pgbench-common.sh"
tenants=${TENANTS:-20}

citus=$(admin -c "SELECT count(*) FROM pg_extension WHERE extname = 'citus'")
accounts=$(admin -c "SELECT count(*) FROM accounts") || { say "no accounts table in $PGDATABASE: run tenancy setup and tenancy seed first"; exit 1; }
[ "$accounts" -ge "$tenants" ] || { say "$PGDATABASE has $accounts accounts, want at least TENANTS=$tenants"; exit 1; }
first=$(admin -c "SELECT min(id) FROM accounts")

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if [ "$citus" = 1 ]; then
  set_tenant='SELECT app_set_tenant(:t);'
else
  set_tenant="SELECT set_config('app.tenant_id', :t::text, true);"
fi

page=$(grep -v '^--' "$(dirname "$0")/page-statement.sql")
one="SELECT id, name, is_complete, details, task_id FROM subtasks WHERE account_id = :t ORDER BY name, id LIMIT 10 OFFSET :off;"
two="SELECT subtasks.id, subtasks.name, tasks.name FROM subtasks JOIN tasks ON tasks.account_id = subtasks.account_id AND tasks.id = subtasks.task_id WHERE subtasks.account_id = :t ORDER BY subtasks.name, subtasks.id LIMIT 10 OFFSET :off;"
three="SELECT subtasks.id, subtasks.name, tasks.name, projects.name FROM subtasks JOIN tasks ON tasks.account_id = subtasks.account_id AND tasks.id = subtasks.task_id JOIN projects ON projects.account_id = tasks.account_id AND projects.id = tasks.project_id WHERE subtasks.account_id = :t ORDER BY subtasks.name, subtasks.id LIMIT 10 OFFSET :off;"

script() { # name, body...
  local f=$dir/$1.sql; shift
  { printf '\\set t random(%d, %d)\n\\set off random(0, 9) * 10\n' "$first" "$((first + tenants - 1))"; printf '%s\n' "$@"; } > "$f"
}
script server '\startpipeline' 'BEGIN;' "$set_tenant" "$page" 'COMMIT;' '\endpipeline'
script statement "$page"
script fastpath "$one"
script fastpath_block '\startpipeline' 'BEGIN;' "$set_tenant" "$one" 'COMMIT;' '\endpipeline'
script join2 "$two"
script join3 "$three"

run() { # user, scripts... (picked at random) -> transactions per second
  local user=$1 password=${PGPASSWORD:-} files=() s; shift
  [ "$user" = "$app" ] && password=${APP_DB_PASSWORD:-$password}
  for s in "$@"; do files+=(-f "$dir/$s.sql"); done
  PGPASSWORD=$password "$pgbench" -n -M prepared -c "$clients" -j 2 -T "$duration" -U "$user" "${files[@]}" 2>&1 |
    awk '/^tps/ {printf "%.0f", $3} /ERROR|aborted/ {print "error: " $0 > "/dev/stderr"; exit 1}'
}

kind=$([ "$citus" = 1 ] && echo "Citus coordinator" || echo "plain PostgreSQL")
say "$kind $PGHOST:$PGPORT/$PGDATABASE, $tenants tenants of $accounts, $clients clients, ${duration}s each"
printf '%-58s %10s\n' "statement (pgbench -M prepared)" "per second"
printf '%-58s %10s\n' "page read as the server sends it (app role, in a block)" "$(run "$app" server)"
printf '%-58s %10s\n' "the page statement alone (admin, no block, no RLS)" "$(run "$PGUSER" statement)"
printf '%-58s %10s\n' "subtasks only, one table (admin)" "$(run "$PGUSER" fastpath)"
printf '%-58s %10s\n' "subtasks only, as the app role in a block" "$(run "$app" fastpath_block)"
printf '%-58s %10s\n' "subtasks + tasks (admin)" "$(run "$PGUSER" join2)"
printf '%-58s %10s\n' "subtasks + tasks + projects (admin)" "$(run "$PGUSER" join3)"

if [ "$citus" = 1 ]; then
  # Citus lets any node with its metadata plan a distributed query; on the
  # worker that holds the tenant's shards the reads run in the backend
  # itself (local execution), with no hop to another node. The server
  # always connects to the coordinator; this row is what routing each
  # tenant's reads to its worker would gain.
  worker=$(admin -F ' ' -c "SELECT nodename, nodeport, groupid FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND hasmetadata AND shouldhaveshards AND groupid <> 0 ORDER BY groupid LIMIT 1")
  if [ -n "$worker" ]; then
    read -r whost wport wgroup <<<"$worker"
    local_tenants=$(admin -c "SELECT a.id FROM accounts a JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('subtasks', a.id) WHERE p.groupid = $wgroup ORDER BY a.id LIMIT $tenants")
    names=()
    for t in $local_tenants; do
      { printf '\\set t %d\n\\set off random(0, 9) * 10\n' "$t"; printf '%s\n' '\startpipeline' 'BEGIN;' "$set_tenant" "$page" 'COMMIT;' '\endpipeline'; } > "$dir/local_$t.sql"
      names+=("local_$t")
    done
    # The same read must give the tenant its page there, or the rate means nothing.
    t=${names[0]#local_}
    rows=$(PGHOST=$whost PGPORT=$wport PGPASSWORD=${APP_DB_PASSWORD:-${PGPASSWORD:-}} admin -U "$app" -v t="$t" -v off=0 <<<"BEGIN; $set_tenant $page COMMIT;" | grep -c .)
    [ "$rows" -gt 0 ] || { say "tenant $t read no page on the worker $whost:$wport"; exit 1; }
    rate=$(PGHOST=$whost PGPORT=$wport run "$app" "${names[@]}")
    printf '%-58s %10s\n' "page read as the server sends it, on the tenant's worker" "$rate"
  fi

  # Citus runs a call of a distributed function on the worker that has the
  # tenant (one hop, no block); inside it, one-table reads of the local
  # shards keep their plans. Made here, measured, and dropped.
  fn=page_cost_probe_$$
  trap 'admin -c "DROP FUNCTION IF EXISTS public.$fn(bigint, int, int)" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
  admin >/dev/null <<SQL
CREATE FUNCTION public.$fn(tenant bigint, lim int, off int)
RETURNS TABLE (id bigint, name text, is_complete boolean, details text, task_name text, project_name text, account_slug text, account_name text, total bigint)
LANGUAGE plpgsql SET search_path = public, pg_temp SET plan_cache_mode = force_generic_plan AS \$f\$
DECLARE
  r record; n bigint; tids bigint[]; tnames text[]; tprojects bigint[]; pids bigint[]; pnames text[]; aslug text; aname text; i int;
BEGIN
  PERFORM set_config('app.tenant_id', tenant::text, true);
  SELECT c.subtasks INTO n FROM public.subtask_counts c WHERE c.account_id = tenant;
  SELECT a.slug, a.name INTO aslug, aname FROM public.accounts a WHERE a.id = tenant;
  SELECT array_agg(t.id), array_agg(t.name), array_agg(t.project_id) INTO tids, tnames, tprojects FROM public.tasks t WHERE t.account_id = tenant;
  SELECT array_agg(p.id), array_agg(p.name) INTO pids, pnames FROM public.projects p WHERE p.account_id = tenant;
  FOR r IN SELECT s.id, s.name, s.is_complete, s.details, s.task_id FROM public.subtasks s WHERE s.account_id = tenant ORDER BY s.name, s.id LIMIT lim OFFSET off LOOP
    i := array_position(tids, r.task_id);
    id := r.id; name := r.name; is_complete := r.is_complete; details := r.details;
    task_name := tnames[i]; project_name := pnames[array_position(pids, tprojects[i])];
    account_slug := aslug; account_name := aname; total := n;
    RETURN NEXT;
  END LOOP;
END \$f\$;
SELECT create_distributed_function('public.$fn(bigint,int,int)', 'tenant', colocate_with := 'subtasks');
GRANT EXECUTE ON FUNCTION public.$fn(bigint, int, int) TO "$app";
SQL
  script delegated "SELECT public.$fn(:t, 10, :off);"
  printf '%-58s %10s\n' "page as a function Citus runs on the worker (app role)" "$(run "$app" delegated)"
fi
