#!/usr/bin/env bash
# A 4-node rolling deploy of TranslateApp 5.3 → 5.4 through baton proxy at a fixed request rate
# (GET, POST and PUT with bodies, new and keep-alive connections), without and with surge. Prints
# wall time against the nodes' own steps (drain, stop, boot, health rise, admit), p99 latency
# during the rollout against steady state, and every request that really failed.
#
# With --hosts ssh: the fleet is HOSTS hosts reached over SSH (network namespaces, each with its
# own sshd; needs root), upgraded in batches; wall time against the critical path of the node
# steps, with the shipping and SSH cost in columns of their own.
#
#   benchmarks/rollout.sh
#   RATE=2000 REPEAT=20 benchmarks/rollout.sh     # the issue's bar: 0 failed in 20 deploys
#   benchmarks/rollout.sh --hosts ssh             # HOSTS=8 BATCH=4 PARALLEL=4 REPEAT=3 PAYLOAD_MB=16
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="/opt/swift/usr/bin:$PATH"; fi
hosts=local
if [ "${1:-}" = "--hosts" ]; then hosts=${2:?--hosts local|ssh}; fi
echo "building (release)..." >&2
swift build -c release --product TranslateApp >/dev/null
swift build -c release --product baton-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
case "$hosts" in
local) exec "$bin/baton-bench" rollout --rate "${RATE:-200}" --steady "${STEADY:-5}" --nodes "${NODES:-4}" --repeat "${REPEAT:-1}" ;;
ssh)
    source scripts/setup.sh
    ensure_packages openssh-server openssh-client rsync iproute2 procps
    exec "$bin/baton-bench" rollout-hosts --hosts "${HOSTS:-8}" --batch "${BATCH:-4}" --parallel "${PARALLEL:-4}" --repeat "${REPEAT:-3}" --payload "${PAYLOAD_MB:-16}" ;;
*) echo "--hosts: expected local or ssh, got '$hosts'" >&2; exit 2 ;;
esac
