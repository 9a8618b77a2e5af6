#!/bin/bash
# One run with a foreach over 10,000 items (max_concurrency 200, one transform per item), timed end to end.
#   scripts/bench-foreach10k.sh [uwf binary] [extra `uwf serve` arguments, e.g. --database postgres://…]
# Starts its own server on port 8096 with a throwaway data directory; prints items per second.
set -euo pipefail
B=${1:-.build/release/uwf}; shift || true
DIR=$(mktemp -d /tmp/uwf-foreach10k.XXXXXX)
"$B" serve --port 8096 --data-dir "$DIR/data" --log-level warning "$@" > "$DIR/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf localhost:8096/health > /dev/null && break; sleep 0.1; done
curl -sf -XPOST localhost:8096/api/v1/workflows -H 'Content-Type: application/json' -d '{"name": "foreach10k", "version": "1.0.0",
  "definition": {"steps": [{"id": "each", "type": "foreach", "config": {"items": "${input.items}", "max_concurrency": 200,
  "steps": [{"id": "double", "type": "transform", "config": {"output": "${item * 2}"}}]}}]}}' > /dev/null
python3 - <<'EOF'
import json, time, urllib.request
items = list(range(10000))
request = urllib.request.Request("http://127.0.0.1:8096/api/v1/workflows/foreach10k/execute",
                                 data=json.dumps({"input": {"items": items}}).encode(), headers={"Content-Type": "application/json"})
t0 = time.time()
run_id = json.load(urllib.request.urlopen(request))["run_id"]
t1 = time.time()
while True:
    run = json.load(urllib.request.urlopen(f"http://127.0.0.1:8096/api/v1/executions/{run_id}"))
    if run["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
        break
    time.sleep(0.05)
t2 = time.time()
results = run["steps"][0]["output"]["results"] if run["status"] == "COMPLETED" else []
print("status %s, start answered in %.2f s, finished in %.1f s, results correct: %s, %.0f items/s"
      % (run["status"], t1 - t0, t2 - t0, results == [i * 2 for i in items], len(items) / (t2 - t0)))
EOF
