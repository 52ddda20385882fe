#!/usr/bin/env bash
# Measures how long the explorer's pages take to serve on a long chain and on a short one, so
# that "independent of chain length" is a figure, not a hope (docs/performance.md, "Explorer").
#
#   scripts/explorer-figures.sh [BLOCKS] [REQUESTS]      # defaults: 100000 blocks, 200 requests
#
# For each chain length (BLOCKS and 1,000) it writes a network with `ordo genesis`, fills every
# node's store with that many certified blocks (node/examples/fill_chain.rs: real signed
# transactions, real PBFT certificates), starts it with `ordo testnet`, and times REQUESTS
# sequential requests of `/`, `/blocks` (the first page), `/blocks?before=H` (a page from the
# middle and one near genesis) and `/blocks/H` on node 0 with curl, printing p50/p99/max in ms.
# Uses the release build (built if needed). Ports 7600-7603 and 8600-8603.
set -euo pipefail
cd "$(dirname "$0")/.."
blocks=${1:-100000}
requests=${2:-200}
scripts/setup.sh
cargo build --release --quiet --workspace --bins --example fill_chain
target=${CARGO_TARGET_DIR:-target}
ordo=$target/release/ordo
fill=$target/release/examples/fill_chain
work=$(mktemp -d)
sup=""
cleanup() {
  [ -n "$sup" ] && kill -INT "$sup" 2>/dev/null && wait "$sup" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# p50 p99 max (ms) of REQUESTS GETs of a path.
time_path() {
  local url=$1 path=/${1#http://*/} bad
  for _ in $(seq "$requests"); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$url"
  done >"$work/times"
  bad=$(awk '$1 != 200' "$work/times" | wc -l)
  awk '{ printf "%.3f\n", $2 * 1000 }' "$work/times" | sort -n | awk -v path="$path" -v bad="$bad" '
    { t[NR] = $1 }
    END {
      printf "  %-32s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%d requests, %d not 200)\n", \
        path, t[int(NR * 0.5)], t[int(NR * 0.99)], t[NR], NR, bad
    }'
}

for n in "$blocks" 1000; do
  dir=$work/net-$n
  "$ordo" genesis --validators 4 --out "$dir" --p2p-port 7600 --api-port 8600 >/dev/null
  "$fill" "$dir" "$n" 4
  "$ordo" testnet --dir "$dir" --p2p-port 7600 --api-port 8600 >"$work/testnet-$n.log" 2>&1 &
  sup=$!
  for _ in $(seq 300); do
    curl -sf -o /dev/null http://127.0.0.1:8600/readyz && break
    sleep 0.2
  done
  curl -sf -o /dev/null http://127.0.0.1:8600/readyz || { cat "$work/testnet-$n.log"; exit 1; }
  tip=$(curl -s http://127.0.0.1:8600/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])')
  echo "chain of $tip blocks:"
  time_path "http://127.0.0.1:8600/"
  time_path "http://127.0.0.1:8600/blocks"
  time_path "http://127.0.0.1:8600/blocks?before=$((tip / 2))"
  time_path "http://127.0.0.1:8600/blocks?before=30"
  time_path "http://127.0.0.1:8600/blocks/$((tip / 2))"
  kill -INT "$sup"
  wait "$sup" || true
  sup=""
done
