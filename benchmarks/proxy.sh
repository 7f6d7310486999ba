#!/usr/bin/env bash
# baton proxy against nginx and HAProxy (and the backend directly), in one run, same backend,
# same clients, interleaved rounds (the best round of each target is kept). Prints one table per
# row with ratios against HAProxy:
#
#   (a) keep-alive small responses, 1 proxy thread   wrk -t1 -cCONNECTIONS
#   (b) the same with 2 proxy threads                 wrk -t2 -cCONNECTIONS
#   (c) a new connection per request, 1 thread        wrk with "Connection: close"
#   (d) a BIG_MB download and upload, 1 thread        curl, MB/s
#   (e) IDLE idle keep-alive connections, 1 thread    proxy RSS
#   (f) (a) over TLS                                  wrk https, keep-alive
#   (g) (c) over TLS: a full handshake per request    wrk https, "Connection: close"
#
# (a)-(c), (f) and (g) also give each proxy's CPU per request (user + sys µs, from /proc over
# the run). The TLS rows terminate TLS in each proxy with the same certificate (ECDSA P-256,
# made by openssl for the run) and TLS 1.2+; the backend stays plain HTTP.
#
#   benchmarks/proxy.sh
#   DURATION=10s ROUNDS=3 ROWS=ab BATON=dist/baton-0.15.0-linux-x86_64/baton benchmarks/proxy.sh
#
# Every proxy gets the same thread count (nginx worker_processes, HAProxy nbthread, baton
# --threads). On a 2-core machine wrk, the backend and the proxy share the cores, so absolute
# numbers are low and only the ratios travel. wrk's non-2xx responses and socket errors are
# failures, summed over all rounds in the "failed" column. Uploads go through the backend nginx
# to a sink that reads every byte before it answers: the direct row is that path's ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-2}
ROWS=${ROWS:-abcdefg}
BIG_MB=${BIG_MB:-1024}
IDLE=${IDLE:-10000}

source scripts/setup.sh
ensure_packages wrk nginx-light haproxy curl python3 procps openssl
export PATH="$PATH:/usr/sbin"
# (e) needs IDLE descriptors in the client and in each proxy; HAProxy reserves two per connection.
ulimit -n "$(ulimit -Hn)"
fds=$(ulimit -n)
maxconn=$(( (fds - 100) / 2 ))
if [ "$IDLE" -gt $((maxconn - 50)) ]; then
    echo "note: the descriptor limit is $fds, so (e) opens $((maxconn - 50)) connections instead of $IDLE" >&2
    IDLE=$((maxconn - 50))
fi

baton=${BATON:-}   # BATON=/path/to/baton measures another build (e.g. the static one scripts/dist ships)
if [ -z "$baton" ]; then
    echo "building baton (release)..." >&2
    swift build -c release --product baton >/dev/null
    baton="$(swift build -c release --show-bin-path)/baton"
fi

work=$(mktemp -d /tmp/baton-bench.XXXXXX)
declare -A pid=()
cleanup() {
    stop_proxies
    [ -f "$work/backend.pid" ] && kill "$(cat "$work/backend.pid")" 2>/dev/null || true
    [ -n "${sink_pid:-}" ] && kill "$sink_pid" 2>/dev/null || true
    [ -n "${client_pid:-}" ] && kill -9 "$client_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM
backend_port=$(free_port); sink_port=$(free_port)
declare -A port=([direct]=$backend_port [baton]=$(free_port) [nginx]=$(free_port) [haproxy]=$(free_port))
declare -A tls_port=([baton]=$(free_port) [nginx]=$(free_port) [haproxy]=$(free_port))
targets="direct baton nginx haproxy"
proxies="baton nginx haproxy"
# What wrk_row measures: these targets, over this scheme.
row_targets=$targets
scheme=http
url() { if [ "$scheme" = https ]; then echo "https://127.0.0.1:${tls_port[$1]}/"; else echo "http://127.0.0.1:${port[$1]}/"; fi; }

# One certificate for every proxy; HAProxy takes the key in the same file. baton gets its TLS
# listener only when a TLS row runs, so BATON= can still measure a build from before TLS.
baton_tls=()
[[ $ROWS == *f* || $ROWS == *g* ]] && baton_tls=(--tls-listen "127.0.0.1:${tls_port[baton]}" --tls-certificate "$work/tls.pem,$work/tls.key")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -keyout "$work/tls.key" -out "$work/tls.pem" 2>/dev/null
cat "$work/tls.pem" "$work/tls.key" >"$work/tls-haproxy.pem"
chmod 644 "$work/tls.key"

# The backend: nginx answering a small fixed body and serving a sparse BIG_MB file, keep-alive
# without limit; uploads go to a sink that reads the whole body before it answers.
truncate -s "${BIG_MB}M" "$work/big.bin"
chmod 755 "$work"; chmod 644 "$work/big.bin"   # nginx workers run as nobody
cat >"$work/backend.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile $fds;
pid $work/backend.pid;
error_log $work/backend-error.log;
events { worker_connections $maxconn; }
http {
    access_log off;
    keepalive_requests 1000000;
    sendfile on;
    server {
        listen 127.0.0.1:$backend_port;
        location / { return 200 "hello from the backend\n"; }
        location = /big.bin { root $work; }
        location = /upload { client_max_body_size 0; proxy_request_buffering off; proxy_http_version 1.1; proxy_pass http://127.0.0.1:$sink_port; }
    }
}
CONF
nginx -c "$work/backend.conf" -p "$work"
python3 - "$sink_port" >"$work/sink.log" 2>&1 <<'PY' &
import socket, sys, threading
def serve(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk: return
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        fields = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")[1:] if b":" in l}
        buf = bytearray(1 << 20)
        if b"content-length" in fields:
            left = int(fields[b"content-length"]) - len(rest)
            while left > 0:
                n = conn.recv_into(buf, min(left, len(buf)))
                if n == 0: return
                left -= n
        else:  # chunked: read until the last chunk (good enough for a sink)
            tail = rest
            while not tail.endswith(b"0\r\n\r\n"):
                n = conn.recv_into(buf)
                if n == 0: return
                tail = (tail + bytes(buf[:n]))[-16:]
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
sink_pid=$!

# start_proxies THREADS / stop_proxies
start_proxies() {
    local threads=$1
    cat >"$work/nginx.conf" <<CONF
worker_processes $threads;
worker_rlimit_nofile $fds;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections $((IDLE + 1000)); }
http {
    access_log off;
    keepalive_requests 1000000;
    client_max_body_size 0;
    upstream app { server 127.0.0.1:$backend_port; keepalive 256; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:${port[nginx]};
        listen 127.0.0.1:${tls_port[nginx]} ssl;
        ssl_certificate $work/tls.pem;
        ssl_certificate_key $work/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_buffer_size 64k;
            proxy_buffers 4 64k;
            proxy_busy_buffers_size 128k;
            proxy_request_buffering off;
        }
    }
}
CONF
    nginx -c "$work/nginx.conf" -p "$work"
    # The daemon writes its pid file after the starting process has returned.
    for _ in $(seq 100); do [ -s "$work/nginx.pid" ] && break; sleep 0.05; done
    pid[nginx]=$(cat "$work/nginx.pid")
    cat >"$work/haproxy.cfg" <<CONF
global
    nbthread $threads
    maxconn $maxconn
defaults
    mode http
    maxconn $maxconn
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    option forwardfor
    http-reuse always
frontend web
    bind 127.0.0.1:${port[haproxy]}
    bind 127.0.0.1:${tls_port[haproxy]} ssl crt $work/tls-haproxy.pem ssl-min-ver TLSv1.2
    default_backend app
backend app
    server app1 127.0.0.1:$backend_port
CONF
    haproxy -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
    pid[haproxy]=$!
    rm -f "$work/baton.sock"
    "$baton" proxy --listen "127.0.0.1:${port[baton]}" --admin-socket "$work/baton.sock" --state-file "$work/baton.json" \
        --threads "$threads" --health-path / --log-level warning --max-connections $maxconn \
        "${baton_tls[@]}" --backend "app=127.0.0.1:$backend_port" >"$work/baton.log" 2>&1 &
    pid[baton]=$!
    for target in $targets; do
        for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:${port[$target]}/" && break; sleep 0.1; done
        curl -sf -o /dev/null "http://127.0.0.1:${port[$target]}/" || { echo "nothing answers for $target" >&2; cat "$work"/*.log >&2; exit 1; }
    done
    if [ ${#baton_tls[@]} -gt 0 ]; then
        for target in $proxies; do
            curl -sfk -o /dev/null "https://127.0.0.1:${tls_port[$target]}/" || { echo "nothing answers HTTPS for $target" >&2; cat "$work"/*.log >&2; exit 1; }
        done
    fi
}
stop_proxies() {
    local target
    for target in $proxies; do [ -n "${pid[$target]:-}" ] && kill "${pid[$target]}" 2>/dev/null || true; done
    # nginx is not our child: wait until its master is gone, so the next start owns the pid file.
    for target in $proxies; do
        [ -n "${pid[$target]:-}" ] || continue
        for _ in $(seq 100); do kill -0 "${pid[$target]}" 2>/dev/null || break; sleep 0.05; done
        wait "${pid[$target]}" 2>/dev/null || true
    done
    pid=()
    rm -f "$work/nginx.pid"
}

# The processes that serve a target (nginx: its master and workers).
processes() {
    case $1 in
    direct) echo "$(cat "$work/backend.pid") $(pgrep -P "$(cat "$work/backend.pid")" | tr '\n' ' ')" ;;
    nginx) echo "${pid[nginx]} $(pgrep -P "${pid[nginx]}" | tr '\n' ' ')" ;;
    *) echo "${pid[$1]}" ;;
    esac
}
# cpu_ticks TARGET -> "user sys" clock ticks summed over its processes
cpu_ticks() {
    local u=0 s=0 p a b
    for p in $(processes "$1"); do
        read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat")
        u=$((u + a)); s=$((s + b))
    done
    echo "$u $s"
}
rss_kib() {
    local total=0 p
    for p in $(processes "$1"); do total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
    echo "$total"
}
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b+0 == 0) print "-"; else printf "%.2fx", a/b }'; }
tick_us=$(awk -v hz="$(getconf CLK_TCK)" 'BEGIN { print 1000000/hz }')

# wrk_row NAME WRK_THREADS [wrk options…]: interleaved rounds, best req/s kept per target.
wrk_row() {
    local name=$1 wrk_threads=$2; shift 2
    local -A rps=() p50=() p99=() user=() sys=() failed=()
    for target in $row_targets; do failed[$target]=0; done
    for target in $row_targets; do wrk -t"$wrk_threads" -c"$CONNECTIONS" -d2s "$@" "$(url "$target")" >/dev/null; done
    for round in $(seq "$ROUNDS"); do
        for target in $row_targets; do
            local before after out r requests errors u0 s0 u1 s1
            read -r u0 s0 < <(cpu_ticks "$target")
            out=$(wrk -t"$wrk_threads" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$(url "$target")")
            read -r u1 s1 < <(cpu_ticks "$target")
            r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
            requests=$(echo "$out" | awk '/requests in/ {print $1}')
            errors=$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",", ""); n+=$4+$6+$8+$10} END {print n+0}')
            echo "  $name round $round $target: $r req/s, $errors failed" >&2
            if [ -z "${rps[$target]:-}" ] || awk -v x="$r" -v y="${rps[$target]}" 'BEGIN{exit !(x>y)}'; then
                rps[$target]=$r
                p50[$target]=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
                p99[$target]=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
                user[$target]=$(awk -v t=$((u1 - u0)) -v n="$requests" -v us="$tick_us" 'BEGIN{printf "%.1f", t*us/n}')
                sys[$target]=$(awk -v t=$((s1 - s0)) -v n="$requests" -v us="$tick_us" 'BEGIN{printf "%.1f", t*us/n}')
            fi
            failed[$target]=$((failed[$target] + errors))
        done
    done
    printf "\n%s\n" "$name"
    printf "%-8s %10s %8s %8s %9s %8s %9s %7s %12s %12s\n" target "req/s" "p50 ms" "p99 ms" "user µs" "sys µs" "CPU µs" "failed*" "req/s vs hap" "p99 vs hap"
    for target in $row_targets; do
        printf "%-8s %10.0f %8.2f %8.2f %9s %8s %9s %7s %12s %12s\n" "$target" "${rps[$target]}" "${p50[$target]}" "${p99[$target]}" \
            "${user[$target]}" "${sys[$target]}" "$(awk -v a="${user[$target]}" -v b="${sys[$target]}" 'BEGIN{printf "%.1f", a+b}')" "${failed[$target]}" \
            "$(ratio "${rps[$target]}" "${rps[haproxy]}")" "$(ratio "${p99[$target]}" "${p99[haproxy]}")"
    done
    echo "* non-2xx responses and socket errors in all rounds; the other columns are the best round's"
}

transfer_row() {
    local -A down=() up=()
    # The first read of the file and the first upload warm the page cache and the sink.
    for target in $targets; do
        curl -sf -o /dev/null "http://127.0.0.1:${port[$target]}/big.bin"
        curl -sf -o /dev/null -T "$work/big.bin" "http://127.0.0.1:${port[$target]}/upload"
    done
    for round in $(seq "$ROUNDS"); do
        for target in $targets; do
            local d u
            d=$(curl -sf -o /dev/null -w '%{speed_download}' "http://127.0.0.1:${port[$target]}/big.bin")
            u=$(curl -sf -o /dev/null -T "$work/big.bin" -w '%{speed_upload}' "http://127.0.0.1:${port[$target]}/upload")
            echo "  (d) round $round $target: down $d B/s, up $u B/s" >&2
            if [ -z "${down[$target]:-}" ] || awk -v x="$d" -v y="${down[$target]}" 'BEGIN{exit !(x>y)}'; then down[$target]=$d; fi
            if [ -z "${up[$target]:-}" ] || awk -v x="$u" -v y="${up[$target]}" 'BEGIN{exit !(x>y)}'; then up[$target]=$u; fi
        done
    done
    printf "\n(d) %s MiB download and upload, one curl, 1 proxy thread\n" "$BIG_MB"
    printf "%-8s %12s %12s %14s %14s\n" target "down MB/s" "up MB/s" "down vs hap" "up vs hap"
    for target in $targets; do
        printf "%-8s %12.0f %12.0f %14s %14s\n" "$target" "$(awk -v v="${down[$target]}" 'BEGIN{print v/1e6}')" "$(awk -v v="${up[$target]}" 'BEGIN{print v/1e6}')" \
            "$(ratio "${down[$target]}" "${down[haproxy]}")" "$(ratio "${up[$target]}" "${up[haproxy]}")"
    done
}

# (e): IDLE connections each make one request, then stay open while RSS is read.
idle_row() {
    local -A before=() after=()
    printf "\n(e) %s idle keep-alive connections (one request each), 1 proxy thread\n" "$IDLE"
    printf "%-8s %12s %12s %14s %16s\n" target "RSS MiB" "idle MiB" "KiB per conn" "per conn vs hap"
    for target in $proxies; do
        before[$target]=$(rss_kib "$target")
        python3 - "${port[$target]}" "$IDLE" "$work/idle.$target" <<'PY' &
import asyncio, sys, os
port, count, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
async def one(sem, conns):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:"))
        await r.readexactly(length)
        conns.append(w)
async def main():
    sem, conns = asyncio.Semaphore(500), []
    await asyncio.gather(*(one(sem, conns) for _ in range(count)))
    open(ready, "w").write(str(len(conns)))
    await asyncio.sleep(30)
asyncio.run(main())
PY
        client_pid=$!
        local opened
        for _ in $(seq 600); do [ -f "$work/idle.$target" ] && break; sleep 0.1; done
        opened=$(cat "$work/idle.$target" 2>/dev/null || echo 0)
        sleep 1
        after[$target]=$(rss_kib "$target")
        kill -9 "$client_pid" 2>/dev/null || true; wait "$client_pid" 2>/dev/null || true; client_pid=
        [ "$opened" = "$IDLE" ] || echo "  (e) $target: only $opened of $IDLE connections were served" >&2
    done
    for target in $proxies; do
        printf "%-8s %12.1f %12.1f %14.1f %16s\n" "$target" "$(awk -v v="${after[$target]}" 'BEGIN{print v/1024}')" \
            "$(awk -v a="${after[$target]}" -v b="${before[$target]}" 'BEGIN{print (a-b)/1024}')" \
            "$(awk -v a="${after[$target]}" -v b="${before[$target]}" -v n="$IDLE" 'BEGIN{print (a-b)/n}')" \
            "$(ratio "$((after[$target] - before[$target]))" "$((after[haproxy] - before[haproxy]))")"
    done
}

echo "wrk -c$CONNECTIONS -d$DURATION, $ROUNDS interleaved rounds (best kept), $(nproc) cores, baton: $baton"
if [[ $ROWS == *a* || $ROWS == *c* || $ROWS == *d* || $ROWS == *e* || $ROWS == *f* || $ROWS == *g* ]]; then
    start_proxies 1
    [[ $ROWS == *a* ]] && wrk_row "(a) keep-alive, small responses, 1 proxy thread, wrk -t1" 1
    [[ $ROWS == *c* ]] && wrk_row "(c) a new connection per request, 1 proxy thread, wrk -t1" 1 -H "Connection: close"
    # The backend has no TLS listener: the TLS rows compare the proxies.
    row_targets=$proxies scheme=https
    [[ $ROWS == *f* ]] && wrk_row "(f) TLS keep-alive, small responses, 1 proxy thread, wrk -t1" 1
    [[ $ROWS == *g* ]] && wrk_row "(g) TLS, a new connection and full handshake per request, 1 proxy thread, wrk -t1" 1 -H "Connection: close"
    row_targets=$targets scheme=http
    # (e) before (d): its baseline RSS must not hold what the transfers left in the allocator.
    [[ $ROWS == *e* ]] && idle_row
    [[ $ROWS == *d* ]] && transfer_row
    stop_proxies
fi
if [[ $ROWS == *b* ]]; then
    start_proxies 2
    wrk_row "(b) keep-alive, small responses, 2 proxy threads, wrk -t2" 2
    stop_proxies
fi
