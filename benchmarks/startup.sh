#!/usr/bin/env bash
# How long each proxy takes from exec to accepting connections, and how big it is: baton as
# scripts/dist ships it (static, stripped), HAProxy and nginx, in one run. Median of RUNS
# starts each; a start is timed by connecting every millisecond until the port accepts.
#
#   benchmarks/startup.sh          # builds dist/ first
#   RUNS=50 benchmarks/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
source scripts/setup.sh
ensure_packages nginx-light haproxy python3 bc
export PATH="$PATH:/usr/sbin"

scripts/dist >/dev/null
version=$(sed -n 's/.*static let number = "\(.*\)"/\1/p' Sources/BatonCore/BatonVersion.swift)
baton="dist/baton-$version-linux-$(uname -m)/baton"
work=$(mktemp -d /tmp/baton-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT

port=$(free_port)
cat > "$work/haproxy.cfg" <<CFG
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend web
  bind 127.0.0.1:$port
  default_backend app
backend app
  server app1 127.0.0.1:9 check
CFG
cat > "$work/nginx.conf" <<CFG
daemon off;
master_process off;
pid $work/nginx.pid;
error_log $work/nginx.err;
events {}
http {
  access_log off;
  server { listen 127.0.0.1:$port; location / { proxy_pass http://127.0.0.1:9; } }
}
CFG

# Median milliseconds from exec to the first accepted connection, RUNS times.
python3 - "$RUNS" "$port" "$work" "$baton" <<'PY'
import os, socket, subprocess, sys, time, statistics
runs, port, work, baton = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
targets = {
    "baton proxy": [baton, "proxy", "--listen", f"127.0.0.1:{port}", "--admin-socket", f"{work}/admin.sock", "--state-file", f"{work}/state.json", "--threads", "1"],
    "HAProxy": ["haproxy", "-f", f"{work}/haproxy.cfg", "-db"],
    "nginx": ["nginx", "-c", f"{work}/nginx.conf", "-p", work],
}
def start(argv):
    begin = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.perf_counter() - begin < 10:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
            elapsed = (time.perf_counter() - begin) * 1000
            break
        except OSError:
            time.sleep(0.001)
    else:
        elapsed = float("nan")
    process.terminate()
    process.wait()
    for leftover in ("state.json", "admin.sock"):
        try: os.unlink(os.path.join(work, leftover))
        except FileNotFoundError: pass
    return elapsed
results = {}
for _ in range(runs):                       # interleaved rounds
    for name, argv in targets.items():
        results.setdefault(name, []).append(start(argv))
base = statistics.median(results["HAProxy"])
print(f"\nexec to accepting connections, median of {runs} starts\n")
print("| proxy | ms | vs HAProxy |\n|---|---|---|")
for name, values in results.items():
    median = statistics.median(values)
    print(f"| {name} | {median:.1f} | {median / base:.2f}x |")
PY
printf '\n| binary | bytes | MiB |\n|---|---|---|\n'
for file in "$baton" "$(command -v haproxy)" "$(command -v nginx)"; do
    bytes=$(stat -L -c %s "$file")
    printf '| %s | %s | %.1f |\n' "$file" "$bytes" "$(echo "$bytes / 1048576" | bc -l)"
done
