#!/usr/bin/env bash
# A 4-node rolling deploy of TranslateApp 5.3 → 5.4 through baton proxy at a fixed request rate
# (GET, POST and PUT with bodies, new and keep-alive connections), without and with surge. Prints
# wall time against the nodes' own steps (drain, stop, boot, health rise, admit), p99 latency
# during the rollout against steady state, and every request that really failed.
#
#   benchmarks/rollout.sh
#   RATE=2000 REPEAT=20 benchmarks/rollout.sh     # the issue's bar: 0 failed in 20 deploys
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="/opt/swift/usr/bin:$PATH"; fi
echo "building (release)..." >&2
swift build -c release --product TranslateApp >/dev/null
swift build -c release --product baton-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
exec "$bin/baton-bench" rollout --rate "${RATE:-200}" --steady "${STEADY:-5}" --nodes "${NODES:-4}" --repeat "${REPEAT:-1}"
