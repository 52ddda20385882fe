#!/usr/bin/env bash
# Commit throughput with and without event subscribers (docs/performance.md, "Explorer and event
# streams"): starts a release testnet on ports 7700/8700 and runs `ordo bench --rate 5000
# --duration 20` with 0, 50 full-block and 50 headers-only subscribers, ROUNDS times.
#   scripts/events-figures.sh [ORDO_BINARY] [OUT_FILE] [ROUNDS]
set -u
BIN=${1:-target/release/ordo}; OUT=${2:-events-figures.json}; ROUNDS=${3:-2}
D=$(mktemp -d)/net; rm -rf $D
$BIN testnet --dir $D --p2p-port 7700 --api-port 8700 > $D.testnet.log 2>&1 &
TN=$!
for i in $(seq 1 120); do curl -sf http://127.0.0.1:8700/v1/status >/dev/null && curl -sf http://127.0.0.1:8703/v1/status > /dev/null && break; sleep 1; done
sleep 5
NODES=http://127.0.0.1:8700,http://127.0.0.1:8701,http://127.0.0.1:8702,http://127.0.0.1:8703
: > $OUT
for r in $(seq 1 $ROUNDS); do
  for s in 0 50 50h; do
    extra=""
    case $s in 0) ;; 50) extra="--subscribers 50";; 50h) extra="--subscribers 50 --subscribers-headers-only";; esac
    echo "== round $r subscribers $s" >> $OUT
    $BIN bench --node $NODES --rate 5000 --duration 20 $extra --json >> $OUT 2>$D.bench.log
    echo >> $OUT
  done
done
kill -INT $TN; wait $TN
