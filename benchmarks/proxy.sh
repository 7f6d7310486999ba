#!/usr/bin/env bash
# Requests/s and latency through baton proxy, nginx and HAProxy against the same backend, in one
# run, with the same wrk settings and keep-alive everywhere. Prints a table with ratios.
#
#   benchmarks/proxy.sh                       # 10 s per target, 64 connections, 1 proxy thread
#   DURATION=30s CONNECTIONS=128 THREADS=2 benchmarks/proxy.sh
#
# Every proxy gets THREADS workers (nginx worker_processes, HAProxy nbthread, baton --threads);
# on a 2-core machine wrk and the backend share the same cores, so absolute numbers are low and
# only the ratios travel.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
WRK_THREADS=${WRK_THREADS:-1}
ROUNDS=${ROUNDS:-1}

source scripts/setup.sh
ensure_packages wrk nginx-light haproxy curl
export PATH="$PATH:/usr/sbin"

baton=${BATON:-}   # BATON=/path/to/baton measures another build
if [ -z "$baton" ]; then
    echo "building baton (release)..." >&2
    swift build -c release --product baton >/dev/null
    baton="$(swift build -c release --show-bin-path)/baton"
fi

work=$(mktemp -d /tmp/baton-bench.XXXXXX)
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    [ -f "$work/backend.pid" ] && kill "$(cat "$work/backend.pid")" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
backend_port=$(free_port); nginx_port=$(free_port); haproxy_port=$(free_port); baton_port=$(free_port)

# The backend: nginx answering a small fixed body, one worker, keep-alive without limit.
cat >"$work/backend.conf" <<CONF
worker_processes 1;
pid $work/backend.pid;
error_log $work/backend-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$backend_port;
        location / { return 200 "hello from the backend\n"; }
    }
}
CONF
nginx -c "$work/backend.conf" -p "$work"

cat >"$work/nginx.conf" <<CONF
worker_processes $THREADS;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream app { server 127.0.0.1:$backend_port; keepalive 256; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"

cat >"$work/haproxy.cfg" <<CONF
global
    nbthread $THREADS
    maxconn 8192
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option forwardfor
    http-reuse always
frontend web
    bind 127.0.0.1:$haproxy_port
    default_backend app
backend app
    server app1 127.0.0.1:$backend_port
CONF
haproxy -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 & pids+=($!)

"$baton" proxy --listen "127.0.0.1:$baton_port" --admin-socket "$work/baton.sock" --state-file "$work/baton.json" \
    --threads "$THREADS" --health-path / --log-level warning --backend "app=127.0.0.1:$backend_port" >"$work/baton.log" 2>&1 & pids+=($!)

for port in $backend_port $nginx_port $haproxy_port $baton_port; do
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    curl -sf -o /dev/null "http://127.0.0.1:$port/" || { echo "nothing answers on port $port" >&2; cat "$work"/*.log >&2; exit 1; }
done

# run NAME PORT -> "rps p50_ms p99_ms"
run() {
    local out rps p50 p99
    out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$2/")
    if echo "$out" | grep -q "Non-2xx\|Socket errors"; then echo "$1: errors during the run:" >&2; echo "$out" >&2; fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }

# Warm up every path (connection pools, JIT-free but caches), then measure.
for port in $backend_port $baton_port $nginx_port $haproxy_port; do wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$port/" >/dev/null; done

declare -A rps p50 p99
for round in $(seq "$ROUNDS"); do
    for target in direct baton nginx haproxy; do
        case $target in direct) port=$backend_port ;; baton) port=$baton_port ;; nginx) port=$nginx_port ;; haproxy) port=$haproxy_port ;; esac
        read -r r a b < <(run "$target" "$port")
        echo "round $round $target: $r req/s, p50 ${a}ms, p99 ${b}ms" >&2
        # keep the best round of each target
        if [ -z "${rps[$target]:-}" ] || awk -v x="$r" -v y="${rps[$target]}" 'BEGIN{exit !(x>y)}'; then
            rps[$target]=$r; p50[$target]=$a; p99[$target]=$b
        fi
    done
done

echo
echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION, keep-alive, proxies with $THREADS thread(s), $(nproc) cores"
printf "%-10s %12s %9s %9s %14s %14s\n" target "req/s" "p50 ms" "p99 ms" "rps vs nginx" "rps vs haproxy"
for target in direct baton nginx haproxy; do
    printf "%-10s %12.0f %9.2f %9.2f %14s %14s\n" "$target" "${rps[$target]}" "${p50[$target]}" "${p99[$target]}" \
        "$(awk -v a="${rps[$target]}" -v b="${rps[nginx]}" 'BEGIN{printf "%.2fx", a/b}')" \
        "$(awk -v a="${rps[$target]}" -v b="${rps[haproxy]}" 'BEGIN{printf "%.2fx", a/b}')"
done
echo
printf "baton/nginx:   %s req/s, p99 %s\n" "$(awk -v a="${rps[baton]}" -v b="${rps[nginx]}" 'BEGIN{printf "%.2fx", a/b}')" "$(awk -v a="${p99[baton]}" -v b="${p99[nginx]}" 'BEGIN{printf "%.2fx", a/b}')"
printf "baton/haproxy: %s req/s, p99 %s\n" "$(awk -v a="${rps[baton]}" -v b="${rps[haproxy]}" 'BEGIN{printf "%.2fx", a/b}')" "$(awk -v a="${p99[baton]}" -v b="${p99[haproxy]}" 'BEGIN{printf "%.2fx", a/b}')"
