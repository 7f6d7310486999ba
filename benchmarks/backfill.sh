#!/usr/bin/env bash
# Filling a new column on a 1,000,000-row table while an application works on it: one bulk
# UPDATE against Baton's batched backfill (baton migrate start, add_column with up), both on
# the same throwaway PostgreSQL with a pgbench read/write workload running throughout. Prints
# rows/s, the workload's p99 and longest wait during each, and the ratios; one baton row per
# batch policy (POLICIES: "fixed:ROWS" keeps the batch size, "adaptive:DURATION" lets it follow
# a target batch time, which is the default of baton migrate start).
#
#   benchmarks/backfill.sh
#   ROWS=200000 CLIENTS=4 RATE=1000 POLICIES="fixed:5000 adaptive:50ms" DELAY=5ms benchmarks/backfill.sh
#
# The workload runs at a fixed rate (pgbench -R), like an application that does not use the whole
# machine; its latency counts from each transaction's scheduled start, so waiting shows.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
ensure_packages postgresql bc
ROWS=${ROWS:-1000000}
CLIENTS=${CLIENTS:-4}
RATE=${RATE:-1000}
POLICIES=${POLICIES:-fixed:1000 adaptive:50ms adaptive:100ms}
DELAY=${DELAY:-0s}
echo "building baton (release)..." >&2
swift build -c release --product baton >/dev/null
baton="$(swift build -c release --show-bin-path)/baton"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

work=$(mktemp -d /tmp/baton-backfill-bench.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; chmod 755 "$work"; as_pg=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bench=""
cleanup() {
  [ -n "$bench" ] && kill "$bench" 2>/dev/null || true
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U baton --auth=trust --no-sync >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=512MB -c max_wal_size=4GB" start >/dev/null
psql() { "$pgbin/psql" -h 127.0.0.1 -p "$port" -U baton -d postgres -v ON_ERROR_STOP=1 -Atq "$@"; }
url="postgres://baton@127.0.0.1:$port/postgres"

setup_table() {
  psql -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS baton CASCADE; DROP SCHEMA IF EXISTS public_02_doubled CASCADE; DROP TABLE IF EXISTS accounts" \
       -c "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, note text)" \
       -c "INSERT INTO accounts SELECT g, g % 1000, 'account ' || g FROM generate_series(1, $ROWS) g" \
       -c "DROP TABLE IF EXISTS other" -c "CREATE TABLE other (id bigint PRIMARY KEY, v int)" \
       -c "INSERT INTO other SELECT g, g FROM generate_series(1, $ROWS) g" \
       -c "VACUUM ANALYZE accounts" -c "VACUUM ANALYZE other"
}

cat > "$work/workload.sql" <<SQL
\set id random(1, $ROWS)
SELECT balance FROM accounts WHERE id = :id;
UPDATE accounts SET balance = balance + 1 WHERE id = :id;
SQL
cat > "$work/02_doubled.json" <<'JSON'
{"name": "02_doubled", "operations": [{"add_column": {"table": "accounts", "up": "balance * 2",
  "column": {"name": "doubled", "type": "int", "nullable": false}}}]}
JSON

# The workload in 2-second pgbench rounds until told to stop (each round exits normally, so its
# per-transaction log is complete).
workload_until_stopped() {
  trap - EXIT
  local round=0
  while [ ! -e "$work/stop" ]; do
    "$pgbin/pgbench" -h 127.0.0.1 -p "$port" -U baton -n -c "$CLIENTS" -j 2 -R "$RATE" -T 2 -f "$work/workload.sql" \
      -l --log-prefix="$work/pgbench_log.$round" postgres >"$work/pgbench_out.$round" 2>&1 || echo "aborted" >>"$work/pgbench_out.$round"
    round=$((round + 1))
  done
}

# Runs "$@" under the workload; prints "seconds p99_ms max_ms transactions" for the
# transactions that ran while it did. A workload transaction that failed, or a pgbench that
# aborted, ends the benchmark: only completed transactions are timed, so failures would pass
# for speed.
under_load() {
  rm -f "$work"/pgbench_log.* "$work"/pgbench_out.* "$work/stop"
  workload_until_stopped &
  bench=$!
  sleep 1
  local from to
  from=$(date +%s.%N)
  "$@" >/dev/null
  to=$(date +%s.%N)
  touch "$work/stop"
  wait "$bench"
  bench=""
  if grep -Eq "^aborted|number of failed transactions: [1-9]|aborted in command" "$work"/pgbench_out.*; then
    echo "the workload had failures during: $*" >&2
    cat "$work"/pgbench_out.* >&2
    exit 1
  fi
  # pgbench log: client tx latency_us script epoch_s epoch_us (at completion). A transaction
  # counts when it overlapped the window, so one blocked for the whole of it counts too.
  cat "$work"/pgbench_log.* | awk -v from="$from" -v to="$to" '{ end = $5 + $6 / 1e6; start = end - $3 / 1e6; if (end >= from && start <= to) print $3 / 1000 }' | sort -n \
    | awk -v secs="$(echo "$to - $from" | bc -l)" '{ v[NR] = $1 } END { if (NR == 0) { printf "%.2f 0 0 0\n", secs; exit } i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f %.2f %.2f %d\n", secs, v[i], v[NR], NR }'
}

idle_window() { sleep 10; }
# Control: the same amount of writing on a table the workload never touches, to show what any
# write-heavy job costs the workload on this machine, apart from locks.
other_update() { psql -c "UPDATE other SET v = v + 1"; }
bulk_update() { psql -c "ALTER TABLE accounts ADD COLUMN doubled int" -c "UPDATE accounts SET doubled = balance * 2"; }
baton_backfill() {
  local kind=${1%%:*} value=${1#*:}
  if [ "$kind" = fixed ]; then
    "$baton" migrate start "$work/02_doubled.json" --database-url "$url" --batch-size "$value" --batch-time 0 --delay "$DELAY"
  else
    "$baton" migrate start "$work/02_doubled.json" --database-url "$url" --batch-time "$value" --delay "$DELAY"
  fi
}

echo "table of $ROWS rows; pgbench: $CLIENTS clients, $RATE tx/s (SELECT + UPDATE by id), latency from the scheduled start; baton policies $POLICIES, delay $DELAY" >&2
setup_table
under_load idle_window >"$work/idle.result"
under_load other_update >"$work/other.result"
setup_table
under_load bulk_update >"$work/bulk.result"
policy_number=0
for policy in $POLICIES; do
  policy_number=$((policy_number + 1))
  setup_table
  under_load baton_backfill "$policy" >"$work/baton.$policy_number.result"
  filled=$(psql -c "SET search_path = public_02_doubled; SELECT count(*) FROM accounts WHERE doubled = balance * 2")
  [ "$filled" = "$ROWS" ] || { echo "policy $policy filled $filled of $ROWS rows" >&2; exit 1; }
done
under_load idle_window >"$work/after.result"
read -r idle_s idle_p99 idle_max idle_n <"$work/idle.result"
read -r bulk_s bulk_p99 bulk_max bulk_n <"$work/bulk.result"
read -r other_s other_p99 other_max other_n <"$work/other.result"
read -r after_s after_p99 after_max after_n <"$work/after.result"

rate() { echo "$ROWS / $1" | bc -l; }
printf '\n| run | seconds | rows/s | workload tx | workload p99 ms | longest wait ms | rows/s vs bulk | p99 vs idle |\n'
printf '|---|---|---|---|---|---|---|---|\n'
printf '| idle (no backfill) | %.1f | - | %d | %.2f | %.2f | - | 1.00x |\n' "$idle_s" "$idle_n" "$idle_p99" "$idle_max"
printf '| control: bulk UPDATE of another table | %.1f | %.0f | %d | %.2f | %.2f | - | %.2fx |\n' "$other_s" "$(rate "$other_s")" "$other_n" "$other_p99" "$other_max" "$(echo "$other_p99 / $idle_p99" | bc -l)"
printf '| bulk UPDATE | %.1f | %.0f | %d | %.2f | %.2f | 1.00x | %.2fx |\n' "$bulk_s" "$(rate "$bulk_s")" "$bulk_n" "$bulk_p99" "$bulk_max" "$(echo "$bulk_p99 / $idle_p99" | bc -l)"
policy_number=0
for policy in $POLICIES; do
  policy_number=$((policy_number + 1))
  read -r baton_s baton_p99 baton_max baton_n <"$work/baton.$policy_number.result"
  printf '| baton backfill, %s | %.1f | %.0f | %d | %.2f | %.2f | %.2fx | %.2fx (%.2fx control) |\n' "$policy" "$baton_s" "$(rate "$baton_s")" "$baton_n" "$baton_p99" "$baton_max" \
    "$(echo "$bulk_s / $baton_s" | bc -l)" "$(echo "$baton_p99 / $idle_p99" | bc -l)" "$(echo "$baton_p99 / $other_p99" | bc -l)"
done
printf '| after baton start (triggers on, no backfill) | %.1f | - | %d | %.2f | %.2f | - | %.2fx |\n' "$after_s" "$after_n" "$after_p99" "$after_max" "$(echo "$after_p99 / $idle_p99" | bc -l)"
echo "every policy filled all $ROWS rows, checked through the new version (rows the workload wrote are filled by the trigger)"
