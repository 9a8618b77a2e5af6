#!/usr/bin/env bash
# Fuzzes a live `uwf serve` with schemathesis against its own /openapi.json, for a bounded time: no answer may be a
# 5xx, and every answer must match the document (status, content type, schema); input the document forbids must be
# refused. .ci/run runs it after the test suite; run it by hand after `swift build`.
#
#   scripts/schemathesis.sh                 # UWF_SCHEMATHESIS_SECONDS (default 240) and UWF_BINARY may be set
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${UWF_BINARY:-.build/debug/uwf}
seconds=${UWF_SCHEMATHESIS_SECONDS:-240}
command -v schemathesis >/dev/null || { echo "schemathesis is not installed (python3 -m pip install schemathesis)" >&2; exit 1; }

dir=$(mktemp -d)
key="uwf_schemathesis_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
UWF_BOOTSTRAP_ADMIN_KEY=$key "$binary" serve --port 0 --data-dir "$dir/data" --log-level error --rate-limit-per-minute 0 \
    --auth-failure-limit 1000 >"$dir/stdout" 2>"$dir/stderr" &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
url=""
for _ in $(seq 1 300); do
    url=$(sed -nE 's/^uwf listening on (http[^ ]+).*/\1/p' "$dir/stdout")
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$url" ]] || { echo "uwf serve did not start" >&2; exit 1; }

# Something to find: a definition and a run of it.
auth=(-H "Authorization: Bearer $key" -H "Content-Type: application/json")
curl -sf "${auth[@]}" -X POST "$url/api/v1/workflows" \
    -d '{"name": "fuzzed", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}' >/dev/null
curl -sf "${auth[@]}" -X POST "$url/api/v1/execute" -d '{"workflow_name": "fuzzed", "input": {}}' >/dev/null

echo "schemathesis: $url/openapi.json for ${seconds}s"
# Live streams never end by design: they are left out (LiveEventTests covers them). One worker: with two, hypothesis
# (under CPython 3.11) once failed inside ast.parse from two threads at once, an error of the tool, not of the API.
schemathesis run "$url/openapi.json" \
    --url "$url" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
    --exclude-path-regex '/events$' \
    --phases examples,coverage,fuzzing \
    --max-examples 25 \
    --max-time "$seconds" \
    --request-timeout 10 \
    --workers 1 \
    --no-color
