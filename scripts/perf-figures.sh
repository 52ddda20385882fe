#!/usr/bin/env bash
# The figures of docs/performance.md, "Throughput and tail latency" (issue 11): on a fresh 4-node
# release testnet, `ordo bench --rates 2000,5000,10000,15000,20000 --duration SECS` (one row per
# rate), then three bursts of 60,000 at once. Everything runs on this machine's cores, the
# validators and the load generator alike, as a user's laptop test would.
#
#   scripts/perf-figures.sh [ORDO_BINARY] [OUT_DIR] [CONSENSUS] [SECS]
#     ORDO_BINARY  default target/release/ordo, or $CARGO_TARGET_DIR/release/ordo
#     OUT_DIR      where the JSON reports go (default perf-figures/)
#     CONSENSUS    pbft (default) or raft
#     SECS         seconds of steady load per rate (default 10)
#
# Prints one summary line per step; the JSON files hold everything `ordo bench --json` reports.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/ordo}
OUT=${2:-perf-figures}
KIND=${3:-pbft}
SECS=${4:-10}
mkdir -p "$OUT"
. scripts/lib/testnet.sh
trap testnet_down EXIT
testnet_up "$BIN" "$(mktemp -d)/net" 8800 7800 "$KIND" "$OUT/testnet-$KIND.log"

summary() {
  KIND=$KIND python3 - "$1" <<'EOF'
import json, os, sys
reports = json.load(open(sys.argv[1]))
for r in (reports if isinstance(reports, list) else [reports]):
    l = r["latency_ms"]
    print("%-8s offered %6s  committed %6d/%-6d  %7.0f tx/s  %.2f of ceiling %5.0f  p50 %7s  p99 %7s  max %7s ms  view changes %s  refusals %s" % (
        os.environ["KIND"], r["offered_rate"] or "burst", r["committed"], r["txs"], r["throughput_tx_per_s"] or 0,
        r["fraction_of_ceiling"] or 0, r["ceiling_tx_per_s"], l["p50"], l["p99"], l["max"], r["view_changes"], r["refusals"]))
EOF
}

"$BIN" bench --node "$NODES" --rates 2000,5000,10000,15000,20000 --duration "$SECS" --json \
  > "$OUT/sweep-$KIND.json" 2> "$OUT/sweep-$KIND.err" || true
summary "$OUT/sweep-$KIND.json"
for i in 1 2 3; do
  "$BIN" bench --node "$NODES" --txs 60000 --batch 1000 --json > "$OUT/burst$i-$KIND.json" 2> "$OUT/burst$i-$KIND.err" || true
  summary "$OUT/burst$i-$KIND.json"
done
