#!/usr/bin/env bash
# A/B of two (or more) `ordo` binaries in one run, for docs/performance.md: this machine's figures
# swing by 2x between runs, so a change is judged only against its baseline measured alongside.
# Each round starts a fresh 4-validator release testnet per binary, in turn, and runs on it
# `ordo bench --rate RATE --duration SECS` and one burst of 60,000 at once.
#
#   scripts/ab.sh [-r ROUNDS] [-k pbft|raft] [-R RATE] [-s SECS] [-o OUT_DIR] LABEL=BIN LABEL=BIN ...
#
# Prints one line per (round, binary, step), with the signature checks and the loopback bytes per
# committed transaction (every byte the nodes and the bench moved between them: API, gossip,
# consensus); the JSON reports go to OUT_DIR (default ab/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=2 KIND=pbft RATE=10000 SECS=10 OUT=ab
while getopts "r:k:R:s:o:" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    k) KIND=$OPTARG ;;
    R) RATE=$OPTARG ;;
    s) SECS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n 2,9p "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || { sed -n 2,9p "$0" >&2; exit 2; }
for spec in "$@"; do
  [ -x "${spec#*=}" ] || { echo "ab.sh: ${spec#*=} is not an executable" >&2; exit 2; }
done
mkdir -p "$OUT"
. scripts/lib/testnet.sh
trap testnet_down EXIT

# Bytes received on the loopback interface so far (every testnet byte crosses it once).
lo_bytes() { awk '/^ *lo:/ { print $2 }' /proc/net/dev; }

summary() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r = r[0] if isinstance(r, list) else r
l = r["latency_ms"]
lo = int(sys.argv[3]) / r["committed"] if r["committed"] else 0
print("%-28s committed %6d/%-6d %7.0f tx/s  %.2f of ceiling %5.0f  p50 %7s  p99 %7s  max %7s ms  node CPU %s us/tx  bench CPU %s us/tx  sig checks %s/tx  loopback %.0f B/tx  view changes %s  refusals %s" % (
    sys.argv[2], r["committed"], r["txs"], r["throughput_tx_per_s"] or 0, r["fraction_of_ceiling"] or 0,
    r["ceiling_tx_per_s"], l["p50"], l["p99"], l["max"], r.get("node_cpu_us_per_tx"), r.get("bench_cpu_us_per_tx"),
    r.get("signature_checks_per_tx"), lo, r["view_changes"], r["refusals"]), flush=True)
EOF
}

for round in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    label=${spec%%=*} bin=${spec#*=}
    testnet_up "$bin" "$(mktemp -d)/net" 8800 7800 "$KIND" "$OUT/testnet-$label-$round.log"
    f="$OUT/$label-$round"
    lo0=$(lo_bytes)
    "$bin" bench --node "$NODES" --rate "$RATE" --duration "$SECS" --json > "$f-rate.json" 2> "$f-rate.err" || true
    summary "$f-rate.json" "$round $label ${RATE}/s" $(($(lo_bytes) - lo0))
    lo0=$(lo_bytes)
    "$bin" bench --node "$NODES" --txs 60000 --batch 1000 --json > "$f-burst.json" 2> "$f-burst.err" || true
    summary "$f-burst.json" "$round $label burst" $(($(lo_bytes) - lo0))
    testnet_down
    TN=""
  done
done
