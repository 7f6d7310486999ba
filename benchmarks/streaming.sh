#!/usr/bin/env bash
# Fast requests' latency with long streaming responses in flight: straight to the app servers,
# through baton proxy, nginx (least_conn) and HAProxy (leastconn), in one run. The app is
# httpbin under gunicorn (three nodes, two workers each; sync workers, then gthread workers),
# the streams are httpbin's /drip (1-3 s each), the fast requests /get at RATE per second.
# Prints a table: p50/p99 without and with streams, and the p99 ratio (the aim is <= 2x).
#
#   benchmarks/streaming.sh
#   RATE=200 STREAMS=6 DURATION=20 KINDS=gthread benchmarks/streaming.sh
#   BASELINE=/path/to/older/baton benchmarks/streaming.sh   # adds a row for another build
#
# gunicorn and httpbin come from PyPI into a virtualenv under ~/.cache/baton-bench-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-100}
STREAMS=${STREAMS:-4}
DURATION=${DURATION:-10}
KINDS=${KINDS:-sync gthread}
BASELINE=${BASELINE:-}

source scripts/setup.sh
ensure_packages nginx-light haproxy curl python3-venv
export PATH="$PATH:/usr/sbin"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/baton-bench-venv"
if [ ! -x "$venv/bin/gunicorn" ] || ! "$venv/bin/python" -c 'import httpbin' 2>/dev/null; then
    echo "installing gunicorn and httpbin into $venv" >&2
    python3 -m venv "$venv" && "$venv/bin/pip" install -q gunicorn httpbin
fi

if [ -z "${BATON:-}" ]; then
    echo "building baton (release)..." >&2
    swift build -c release --product baton >/dev/null
    BATON="$(swift build -c release --show-bin-path)/baton"
fi

work=$(mktemp -d /tmp/baton-stream-bench.XXXXXX)
pids=()
stop_all() {
    kill "${pids[@]}" 2>/dev/null || true
    for pidfile in "$work"/*.pid; do [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -f "$work"/*.pid "$work"/*.json  # the next fleet's proxies start from nothing
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT INT TERM
wait_for() {
    for _ in $(seq 100); do curl -sf -m 2 -o /dev/null "http://127.0.0.1:$1/get" && return 0; sleep 0.1; done
    echo "nothing answers on port $1" >&2; cat "$work"/*.log >&2; exit 1
}

# start_fleet KIND: three gunicorn nodes and every proxy in front of them; sets the *_port variables.
start_fleet() {
    local kind=$1 workers=(-w 2)
    [ "$kind" = gthread ] && workers=(-w 2 -k gthread --threads 2)
    nodes=(); servers=""; haproxy_servers=""; backends=()
    for n in 1 2 3; do
        local port; port=$(free_port)
        nodes+=("127.0.0.1:$port")
        "$venv/bin/gunicorn" "${workers[@]}" --graceful-timeout 1 -b "127.0.0.1:$port" httpbin:app --pid "$work/node-$kind-$n.pid" >"$work/node$n.log" 2>&1 &
        servers+="server 127.0.0.1:$port; "
        haproxy_servers+="    server node$n 127.0.0.1:$port"$'\n'
        backends+=(--backend "node$n=127.0.0.1:$port")
    done
    nginx_port=$(free_port); haproxy_port=$(free_port); baton_port=$(free_port); baseline_port=$(free_port)
    cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    upstream app { least_conn; $servers keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
    }
}
CONF
    nginx -c "$work/nginx.conf" -p "$work"
    cat >"$work/haproxy.cfg" <<CONF
global
    maxconn 8192
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse safe
frontend web
    bind 127.0.0.1:$haproxy_port
    default_backend app
backend app
    balance leastconn
$haproxy_servers
CONF
    haproxy -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 & pids+=($!)
    "$BATON" proxy --listen "127.0.0.1:$baton_port" --admin-socket "$work/baton.sock" --state-file "$work/baton.json" \
        --threads 1 --health-path /get --log-level warning "${backends[@]}" >"$work/baton.log" 2>&1 & pids+=($!)
    if [ -n "$BASELINE" ]; then
        "$BASELINE" proxy --listen "127.0.0.1:$baseline_port" --admin-socket "$work/baseline.sock" --state-file "$work/baseline.json" \
            --threads 1 --health-path /get --log-level warning "${backends[@]}" >"$work/baseline.log" 2>&1 & pids+=($!)
    fi
    for node in "${nodes[@]}"; do wait_for "${node##*:}"; done
    for port in $nginx_port $haproxy_port $baton_port; do wait_for "$port"; done
    [ -z "$BASELINE" ] || wait_for "$baseline_port"
    sleep 1  # baton's health checks admit its backends
}

# measure TARGET STREAMS -> "p50 p99 over50 failed"
measure() {
    local targets=() out
    case $1 in
        direct) for node in "${nodes[@]}"; do targets+=(--target "$node"); done ;;
        baton) targets=(--target "127.0.0.1:$baton_port") ;;
        baseline) targets=(--target "127.0.0.1:$baseline_port") ;;
        nginx) targets=(--target "127.0.0.1:$nginx_port") ;;
        haproxy) targets=(--target "127.0.0.1:$haproxy_port") ;;
    esac
    out=$(python3 benchmarks/streammix.py "${targets[@]}" --rate "$RATE" --duration "$DURATION" --streams "$2")
    echo "$1, $2 streams: $out" >&2
    echo "$out" | tr ' ' '\n' | awk -F= '{v[$1]=$2} END {print v["p50"], v["p99"], v["over50"], v["failed"]}'
}

rows=()
targets=(direct baton nginx haproxy)
[ -z "$BASELINE" ] || targets=(direct baseline baton nginx haproxy)
for kind in $KINDS; do
    start_fleet "$kind"
    for target in "${targets[@]}"; do
        read -r a50 a99 _ afail < <(measure "$target" 0)
        read -r b50 b99 bover bfail < <(measure "$target" "$STREAMS")
        rows+=("$kind $target $a50 $a99 $b50 $b99 $(awk -v a="$b99" -v b="$a99" 'BEGIN{printf "%.2fx", a/b}') $bover $((afail + bfail))")
    done
    stop_all
done

echo
echo "fast GET /get at $RATE/s for ${DURATION}s, new connection each; $STREAMS /drip streams (1-3 s) in flight; 3 gunicorn nodes x 2 workers; $(nproc) cores"
printf "%-8s %-9s %10s %10s %12s %12s %10s %12s %7s\n" workers target "p50 ms" "p99 ms" "p50 streams" "p99 streams" "p99 ratio" "% over 50ms" failed
for row in "${rows[@]}"; do
    # shellcheck disable=SC2086
    printf "%-8s %-9s %10s %10s %12s %12s %10s %12s %7s\n" $row
done
