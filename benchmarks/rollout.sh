#!/usr/bin/env bash
# A 4-node rolling deploy of TranslateApp 5.3 → 5.4 through baton proxy at a fixed request rate,
# without and with surge. Prints wall time against the nodes' own steps (drain, stop, boot,
# health rise, admit) and p99 latency during the rollout against steady state.
#
#   benchmarks/rollout.sh
#   RATE=400 STEADY=10 benchmarks/rollout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="/opt/swift/usr/bin:$PATH"; fi
echo "building (release)..." >&2
swift build -c release --product TranslateApp >/dev/null
swift build -c release --product baton-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
exec "$bin/baton-bench" rollout --rate "${RATE:-200}" --steady "${STEADY:-5}" --nodes "${NODES:-4}"
