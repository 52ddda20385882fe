#!/usr/bin/env bash
# Where a validator's time goes under load, as a picture: starts a release testnet (4 PBFT
# validators on ports 7600/8600), records every node with `perf record` (DWARF call graphs)
# while `ordo bench` offers a burst, and writes, for the primary (node0) and one backup (node1),
# a flame graph SVG (inferno) and the top functions by self time, and for all four nodes the
# budget by path (scripts/profile-budget.py: each path's share of node CPU, and its microseconds
# per committed transaction).
#
#   scripts/profile.sh [LABEL] [TXS] [ORDO_BINARY]
#     LABEL        names the outputs: docs/profile/LABEL-node0.svg, LABEL-node1.svg, LABEL.txt
#                  (default: "latest")
#     TXS          the burst, offered at once (default 60000)
#     ORDO_BINARY  default target/release/ordo, or $CARGO_TARGET_DIR/release/ordo
#
# Needs perf (Debian linux-perf) and inferno (`cargo install inferno`, done here when missing).
# Run it on an otherwise idle machine: perf's sampling costs a few percent, and the bench runs
# on the same cores as the validators, as in every figure of docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
LABEL=${1:-latest}
TXS=${2:-60000}
BIN=${3:-${CARGO_TARGET_DIR:-target}/release/ordo}
OUT=docs/profile
FREQ=${PROFILE_FREQ:-199}

[ -x "$BIN" ] || { echo "profile: no binary at $BIN (cargo build --release first)" >&2; exit 1; }
command -v perf >/dev/null || { echo "profile: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
if ! command -v inferno-flamegraph >/dev/null; then
  echo "profile: installing inferno (cargo install inferno) ..." >&2
  cargo install --locked inferno >/dev/null
fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
NET="$WORK/net"
PIDS=()
. scripts/lib/testnet.sh
cleanup() {
  for p in "${PIDS[@]:-}"; do kill -INT "$p" 2>/dev/null || true; done
  testnet_down
}
trap cleanup EXIT
testnet_up "$BIN" "$NET" 8600 7600 pbft "$WORK/testnet.log"

nodes_json=$("$BIN" testnet nodes --json --dir "$NET")
for i in 0 1 2 3; do
  pid=$(python3 -c "import json,sys; print(json.load(sys.stdin)[$i]['pid'])" <<<"$nodes_json")
  perf record -q -F "$FREQ" --call-graph dwarf,16384 -p "$pid" -o "$WORK/node$i.perf" 2> "$WORK/perf$i.err" &
  PIDS+=($!)
done
sleep 1
"$BIN" bench --node "$NODES" --txs "$TXS" --json > "$WORK/bench.json" 2> "$WORK/bench.err"
for p in "${PIDS[@]}"; do kill -INT "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || true; done
PIDS=()

{
  echo "# scripts/profile.sh $LABEL: a burst of $TXS on a 4-node release testnet, $(date -u +%FT%TZ)"
  python3 -c "import json; r=json.load(open('$WORK/bench.json')); print('# bench: %d committed, %.0f tx/s (%.2f of the ceiling %.0f), p50 %s ms, p99 %s ms, view changes %s' % (r['committed'], r['throughput_tx_per_s'] or 0, r.get('fraction_of_ceiling') or 0, r.get('ceiling_tx_per_s') or 0, r['latency_ms']['p50'], r['latency_ms']['p99'], r.get('view_changes')))" 2>/dev/null || cat "$WORK/bench.json"
} > "$OUT/$LABEL.txt"
for i in 0 1 2 3; do
  perf script -i "$WORK/node$i.perf" 2>/dev/null > "$WORK/node$i.script"
  inferno-collapse-perf < "$WORK/node$i.script" > "$WORK/node$i.folded"
  role=backup; [ $i = 0 ] && role="primary (view 0)"
  if [ $i -le 1 ]; then
    inferno-flamegraph --title "ordo node$i, $role: $TXS-transaction burst ($LABEL)" --width 1600 --minwidth 1 \
      < "$WORK/node$i.folded" > "$OUT/$LABEL-node$i.svg"
  fi
  {
    echo
    echo "## node$i, $role: top functions by self time"
    perf report -i "$WORK/node$i.perf" --no-children --sort symbol --stdio -q -g none --percent-limit 0.7 2>/dev/null \
      | grep -v "^$" | cut -c1-160 | head -30 || true
  } >> "$OUT/$LABEL.txt"
done
us_per_tx=$(python3 -c "import json; print(json.load(open('$WORK/bench.json')).get('node_cpu_us_per_tx') or '')" 2>/dev/null || true)
{
  echo
  echo "## all four nodes: the budget by path (scripts/profile-budget.py)"
  cat "$WORK"/node?.script | scripts/profile-budget.py - ${us_per_tx:+--us-per-tx "$us_per_tx"}
} >> "$OUT/$LABEL.txt"
echo "profile: wrote $OUT/$LABEL-node0.svg, $OUT/$LABEL-node1.svg and $OUT/$LABEL.txt" >&2
