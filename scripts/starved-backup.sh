#!/usr/bin/env bash
# A backup on a busier host (issue 11, "no view change at any load"): a fresh 4-validator release
# testnet in which one backup runs at a lower CPU priority than the others, so that it falls behind
# the committee under load, as a validator sharing its machine would. A healthy primary must not be
# suspected for it: the backup's lag is its own. Runs `ordo bench` at each rate, then bursts of
# 60,000, and counts the lines in which any validator suspected its primary or left its view.
#
#   scripts/starved-backup.sh [-n NICE] [-N NODE] [-r RATES] [-s SECS] [-b BURSTS] [-o OUT_DIR] [ORDO_BINARY]
#     NICE   the backup's nice value (default 10; 0 starves nobody, for a baseline)
#     NODE   which validator to starve (default node2; node0 is view 0's primary)
#     RATES  offered rates, comma-separated (default 5000,10000)
#
# Prints one summary line per step and the validators' suspicion lines; the JSON reports and the
# node logs go to OUT_DIR (default starved/). Exits 1 if any validator suspected its primary.
set -euo pipefail
cd "$(dirname "$0")/.."
NICE=10 NODE=node2 RATES=5000,10000 SECS=10 BURSTS=2 OUT=starved
while getopts "n:N:r:s:b:o:" opt; do
  case $opt in
    n) NICE=$OPTARG ;;
    N) NODE=$OPTARG ;;
    r) RATES=$OPTARG ;;
    s) SECS=$OPTARG ;;
    b) BURSTS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n 2,13p "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/ordo}
[ -x "$BIN" ] || { echo "starved-backup.sh: $BIN is not an executable" >&2; exit 2; }
mkdir -p "$OUT"
. scripts/lib/testnet.sh
trap testnet_down EXIT
DIR=$(mktemp -d)/net
testnet_up "$BIN" "$DIR" 8800 7800 pbft "$OUT/testnet.log"

# Every thread of the node's process (nice is per thread on Linux), then the ones it starts later
# inherit it from the thread that starts them.
pid=$(pgrep -f "node --config $DIR/$NODE/config.toml" | head -1)
[ -n "$pid" ] || { echo "starved-backup.sh: no process for $NODE" >&2; exit 1; }
for t in /proc/"$pid"/task/*; do renice -n "$NICE" -p "${t##*/}" > /dev/null; done
echo "$NODE (pid $pid) runs at nice $NICE"

summary() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
for r in (lambda x: x if isinstance(x, list) else [x])(json.load(open(sys.argv[1]))):
    l = r["latency_ms"]
    print("%-8s offered %6s  committed %6d/%-6d %7.0f tx/s  %.2f of ceiling  p50 %6s  p99 %6s  max %6s ms  view changes %s  refusals %s" % (
        sys.argv[2], r["offered_rate"] or "burst", r["committed"], r["txs"], r["throughput_tx_per_s"] or 0,
        r["fraction_of_ceiling"] or 0, l["p50"], l["p99"], l["max"], r["view_changes"], r["refusals"]), flush=True)
EOF
}

"$BIN" bench --node "$NODES" --rates "$RATES" --duration "$SECS" --json > "$OUT/rates.json" 2> "$OUT/rates.err" || true
summary "$OUT/rates.json" rates
for i in $(seq 1 "$BURSTS"); do
  "$BIN" bench --node "$NODES" --txs 60000 --batch 1000 --json > "$OUT/burst$i.json" 2> "$OUT/burst$i.err" || true
  summary "$OUT/burst$i.json" "burst$i"
done
for i in 0 1 2 3; do cp "$DIR/node$i/node.log" "$OUT/node$i.log" 2> /dev/null || true; done
suspicions=$(grep -h -E "suspecting the primary|left the view" "$OUT"/node?.log || true)
if [ -n "$suspicions" ]; then
  echo "$suspicions" | cut -c1-2000
  echo "$(echo "$suspicions" | grep -c "suspecting the primary") suspicion(s) of the primary"
  exit 1
fi
echo "no validator suspected its primary"
