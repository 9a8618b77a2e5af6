#!/usr/bin/env bash
# Side by side: the seq3 (three sequential steps) and fanout10 (ten parallel steps and a join) workflows on
# uwf and on DBOS Transact, against the same durable PostgreSQL (fsync on, synchronous_commit on), in one go.
#
#   scripts/bench-vs-peers.sh            # needs root (PostgreSQL runs as the postgres user), PyPI for DBOS
#
# Uses the peer scripts in ../shared/bench/peers (PEERS_DIR to override): start-pg.sh starts PostgreSQL 15 on
# 127.0.0.1:5433, dbos_bench.py runs DBOS. Prints both figures and the ratio; raw results go to $OUT (a temp dir).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS_DIR:-$root/../shared/bench/peers}
[[ -f "$peers/dbos_bench.py" ]] || { echo "peer scripts not found in $peers (set PEERS_DIR)" >&2; exit 1; }
out=${OUT:-$(mktemp -d /tmp/uwf-vs-peers.XXXXXX)}
mkdir -p "$out"
n_dbos=${N_DBOS:-3000}
n_uwf=${N_UWF:-20000}
n_fan_dbos=${N_FAN_DBOS:-500}
n_fan_uwf=${N_FAN_UWF:-3000}

echo "== PostgreSQL (durable defaults) on 127.0.0.1:5433"
bash "$peers/start-pg.sh"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
"$pgbin/createdb" -h 127.0.0.1 -p 5433 -U postgres uwf_bench 2>/dev/null || true

if [[ ! -x /tmp/peers-venv/bin/python ]] || ! /tmp/peers-venv/bin/python -c 'import dbos' 2>/dev/null; then
    echo "== installing DBOS 3.4.0 into /tmp/peers-venv"
    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install -q dbos==3.4.0
fi

echo "== building uwf (release)"
(cd "$root" && swift build -c release --product uwf 2>&1 | tail -n 2)
uwf="$root/.build/release/uwf"

stamp=$(date +%s)
echo "== uwf seq3 ($n_uwf workflows)   $(uptime | sed 's/.*load average/load average/')"
"$uwf" bench --scenario seq3 --count "$n_uwf" --concurrency 64 --json \
    --database "postgres://postgres@127.0.0.1:5433/uwf_bench?sslmode=disable&schema=seq3_$stamp" >"$out/uwf-seq3.json"
echo "== DBOS seq3 (start, 1 submitter thread: its best configuration; $n_dbos workflows)"
(cd "$peers" && /tmp/peers-venv/bin/python dbos_bench.py start --threads 1 --n "$n_dbos" --out "$out/dbos.jsonl" >/dev/null)
echo "== uwf fanout10 ($n_fan_uwf workflows)"
"$uwf" bench --scenario fanout10 --count "$n_fan_uwf" --concurrency 64 --json \
    --database "postgres://postgres@127.0.0.1:5433/uwf_bench?sslmode=disable&schema=fan_$stamp" >"$out/uwf-fanout10.json"
echo "== DBOS fanout10 (fanout-async: 10 async steps with gather; $n_fan_dbos workflows)"
(cd "$peers" && /tmp/peers-venv/bin/python dbos_bench.py fanout-async --threads 4 --n "$n_fan_dbos" --out "$out/dbos.jsonl" >/dev/null)

python3 - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
dbos = [json.loads(l) for l in (out / "dbos.jsonl").read_text().splitlines() if l.strip()]
d = {r["mode"]: r for r in dbos}
rows = []
for scenario, mode in (("seq3", "start"), ("fanout10", "fanout-async")):
    u = json.loads((out / f"uwf-{scenario}.json").read_text())
    p = d[mode]
    rows.append((scenario, u["completed_per_second"], u["start_to_finish_ms"]["p95"], p["wf_per_s"], p["p95_ms"],
                 u["completed_per_second"] / p["wf_per_s"]))
print(f"{'scenario':10} {'uwf wf/s':>10} {'uwf p95 ms':>11} {'DBOS wf/s':>10} {'DBOS p95 ms':>12} {'ratio':>7}")
for s, uw, up, dw, dp, r in rows:
    print(f"{s:10} {uw:10.1f} {up:11.1f} {dw:10.1f} {dp:12.1f} {r:6.1f}x")
print(f"raw results: {out}")
PY
