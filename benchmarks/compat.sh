#!/usr/bin/env bash
# How long `baton compat openapi` takes on a big spec: two generated OpenAPI 3.0 documents of
# OPERATIONS operations (shared component schemas, parameters, request and response bodies;
# the new one with a change every 10th operation). Baselines in the same run: parsing both
# files with Python's yaml module, and comparing a document with itself.
#
#   benchmarks/compat.sh
#   OPERATIONS=2000 RUNS=5 benchmarks/compat.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
ensure_packages python3-yaml
OPERATIONS=${OPERATIONS:-500}
RUNS=${RUNS:-5}
echo "building baton (release)..." >&2
swift build -c release --product baton >/dev/null 2>&1
baton="$(swift build -c release --show-bin-path)/baton"
work=$(mktemp -d /tmp/baton-compat-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 - "$OPERATIONS" "$work" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
def spec(version, changed):
    lines = ["openapi: 3.0.3", "info: {title: big, version: '%s'}" % version, "paths:"]
    for i in range(n // 2):
        change = changed and i % 5 == 0
        lines += [
            "  /things%d/{id}:" % i,
            "    parameters: [{name: id, in: path, required: true, schema: {type: integer}}]",
            "    get:",
            "      parameters: [{name: expand, in: query, required: %s, schema: {type: string, enum: [a, b%s]}}]" % ("true" if change else "false", ", c" if change else ""),
            "      responses:",
            "        '200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Thing%d'}}}}" % (i % 50),
            "        '404': {description: missing}",
            "    put:",
            "      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Thing%d'}}}}" % (i % 50),
            "      responses: {'200': {description: ok, content: {application/json: {schema: {type: object, properties: {ok: {type: boolean}}}}}}}",
        ]
    lines += ["components:", "  schemas:"]
    for s in range(50):
        extra = "        added: {type: string}\n" if changed and s % 7 == 0 else ""
        lines.append("    Thing%d:\n      type: object\n      required: [id, name]\n      properties:\n        id: {type: integer}\n        name: {type: string, maxLength: %d}\n        state: {type: string, enum: [new, done]}\n        tags: {type: array, items: {type: string}}\n%s" % (s, 100 if changed and s % 3 == 0 else 200, extra))
    return "\n".join(lines) + "\n"
open(out + "/old.yaml", "w").write(spec("1", False))
open(out + "/new.yaml", "w").write(spec("2", True))
PY

# Median wall seconds of RUNS runs of "$@".
median() {
  local times=()
  for _ in $(seq "$RUNS"); do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

parse=$(median python3 -c "import sys, yaml; [yaml.load(open(f), Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader)) for f in sys.argv[1:]]" "$work/old.yaml" "$work/new.yaml")
same=$(median "$baton" compat openapi "$work/old.yaml" "$work/old.yaml")
diff=$(median "$baton" compat openapi "$work/old.yaml" "$work/new.yaml")
findings=$("$baton" compat openapi "$work/old.yaml" "$work/new.yaml" --format json | python3 -c "import json, sys; print(len(json.load(sys.stdin)['findings']))" || true)

printf '\n%s operations per document, median of %s runs\n\n' "$OPERATIONS" "$RUNS"
printf '| run | seconds | vs python yaml parse |\n|---|---|---|\n'
printf '| python yaml parse of both files (baseline) | %.3f | 1.00x |\n' "$parse"
printf '| baton compat openapi, a document against itself | %.3f | %.2fx |\n' "$same" "$(echo "$same / $parse" | bc -l)"
printf '| baton compat openapi old new (%s findings) | %.3f | %.2fx |\n' "$findings" "$diff" "$(echo "$diff / $parse" | bc -l)"
