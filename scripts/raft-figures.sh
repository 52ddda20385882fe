#!/usr/bin/env bash
# Raft beside PBFT on this machine, in one run (docs/raft.md, "Figures"):
#  1. `ordo bench --rate 10000 --duration 20` on a 4-node PBFT testnet, then on a 4-node Raft one;
#  2. on the Raft testnet, KILLS leader kills (`ordo testnet kill leader`): the time from the kill
#     to the first new commit on another node, then `ordo testnet restart` and the time until the
#     restarted node has caught up.
#   scripts/raft-figures.sh [ORDO_BINARY] [OUT_DIR] [KILLS]
set -u
BIN=${1:-target/release/ordo}; OUT=${2:-raft-figures}; KILLS=${3:-20}
mkdir -p "$OUT"
NODES=http://127.0.0.1:8900,http://127.0.0.1:8901,http://127.0.0.1:8902,http://127.0.0.1:8903
now_ms() { date +%s%3N; }
height() { curl -sf "http://127.0.0.1:$1/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])' 2>/dev/null || echo -1; }
start_net() { # kind dir
  rm -rf "$2"
  "$BIN" testnet --consensus "$1" --dir "$2" --p2p-port 7900 --api-port 8900 > "$2.log" 2>&1 &
  TN=$!
  for _ in $(seq 1 120); do
    ok=1; for p in 8900 8901 8902 8903; do curl -sf http://127.0.0.1:$p/readyz >/dev/null || ok=0; done
    [ $ok = 1 ] && break; sleep 1
  done
  sleep 3
}
stop_net() { kill -INT $TN; wait $TN; }

for kind in pbft raft; do
  start_net $kind "$OUT/$kind-net"
  "$BIN" bench --node $NODES --rate 10000 --duration 20 --json > "$OUT/bench-$kind.json" 2> "$OUT/bench-$kind.err"
  if [ $kind = raft ]; then
    : > "$OUT/kills.txt"
    for k in $(seq 1 "$KILLS"); do
      # The leader's name from node0's (or node1's) status.
      name=$(for p in 8900 8901 8902 8903; do curl -sf http://127.0.0.1:$p/v1/status && break; done | python3 -c '
import json,sys
s=json.load(sys.stdin); l=s.get("leader")
names={s["node_id"]: s["name"]}; names.update({p["node_id"]: p["name"] for p in s["peers"]})
print(names.get(l, ""))')
      [ -n "$name" ] || { sleep 1; continue; }
      idx=${name#node}; other=$(( (idx + 1) % 4 )); port=$((8900 + other))
      # Keep a trickle of load so that a new commit has something to carry.
      "$BIN" bench --node http://127.0.0.1:$port --txs 400 --rate 200 --batch 10 --clients 1 --timeout 30 --json > /dev/null 2>&1 &
      BP=$!
      sleep 0.5
      before=$(height $port); t0=$(now_ms)
      "$BIN" testnet kill "$name" --dir "$OUT/raft-net" > /dev/null
      while [ "$(height $port)" -le "$before" ]; do sleep 0.01; done
      t1=$(now_ms)
      wait $BP
      "$BIN" testnet restart "$name" --dir "$OUT/raft-net" > /dev/null
      t2=$(now_ms); target=$(height $port)
      until [ "$(height $((8900 + idx)))" -ge "$target" ]; do sleep 0.05; done
      t3=$(now_ms)
      echo "$k $name kill_to_commit_ms=$((t1 - t0)) restart_to_caught_up_ms=$((t3 - t2)) height=$target" | tee -a "$OUT/kills.txt"
      sleep 1
    done
  fi
  stop_net
done
