# Sourced by the figure scripts: starts a 4-validator release testnet in the background and waits
# until every node is ready, then warms it up with a small bench run.
#
#   testnet_up BIN DIR API_PORT P2P_PORT CONSENSUS LOG
#
# Sets TN (the supervisor's pid, stopped with SIGINT by testnet_down) and NODES (the four API
# URLs, comma-separated). Exits the calling script with a message if the nodes never get ready.
testnet_up() {
  local bin=$1 dir=$2 api=$3 p2p=$4 kind=$5 log=$6
  "$bin" testnet --consensus "$kind" --dir "$dir" --p2p-port "$p2p" --api-port "$api" > "$log" 2>&1 &
  TN=$!
  NODES=""
  local ports=() i
  for i in 0 1 2 3; do
    ports+=($((api + i)))
    NODES="${NODES:+$NODES,}http://127.0.0.1:$((api + i))"
  done
  local ready=0 p
  for _ in $(seq 1 120); do
    ready=0
    for p in "${ports[@]}"; do curl -sf "http://127.0.0.1:$p/readyz" > /dev/null && ready=$((ready + 1)); done
    [ "$ready" = 4 ] && break
    sleep 1
  done
  if [ "$ready" != 4 ]; then
    echo "$(basename "$0"): the testnet did not become ready; see $log" >&2
    exit 1
  fi
  # Connections, caches and the first blocks, so that what follows measures the steady path.
  "$bin" bench --node "$NODES" --txs 5000 --json > /dev/null 2> "$log.warmup"
}

testnet_down() {
  if [ -n "${TN:-}" ]; then
    kill -INT "$TN" 2> /dev/null
    wait "$TN" 2> /dev/null || true
  fi
}
