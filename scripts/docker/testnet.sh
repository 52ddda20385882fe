#!/usr/bin/env bash
# The docker testnet: 4 validators on a private bridge network, each with its own volume.
#   scripts/docker/testnet.sh up [DIR]     write DIR (default: docker-testnet) and start the nodes
#   scripts/docker/testnet.sh down [DIR]   stop and remove the containers and the network
# Node I is the container ordo-nodeI at 172.28.0.(10+I), API published on 127.0.0.1:(18080+I).
# ORDO_CONSENSUS=raft writes a Raft network instead of PBFT (only when DIR is new). The network
# directory is mounted read-only except each node's own directory, where a Raft validator keeps
# its membership marker beside its key (docs/raft.md): wiping a node's volume keeps the marker.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-up}"
dir="$(realpath -m "${2:-docker-testnet}")"
net=ordo-testnet
n=4

ordo_bin() { "${ORDO_BIN:-${CARGO_TARGET_DIR:-$here/../../target}/release/ordo}" "$@"; }

case "$cmd" in
  up)
    if [ ! -f "$dir/genesis.json" ]; then
      ordo_bin genesis --consensus "${ORDO_CONSENSUS:-pbft}" --validators $n --out "$dir" --host 0.0.0.0 >/dev/null
      # Inside the network each node is reached at its own address; rewrite the genesis and
      # configs from the 0.0.0.0 placeholders written above.
      for i in $(seq 0 $((n-1))); do
        ip="172.28.0.$((10+i))"
        sed -i "0,/\/ip4\/0.0.0.0\/tcp\/$((7000+i))\"/s//\/ip4\/$ip\/tcp\/$((7000+i))\"/" "$dir/genesis.json"
        sed -i "s#http://0.0.0.0:$((8080+i))#http://$ip:$((8080+i))#" "$dir/genesis.json"
        sed -i 's#^data_dir = .*#data_dir = "/data"#' "$dir/node$i/config.toml"
      done
    fi
    docker network inspect $net >/dev/null 2>&1 || docker network create --subnet 172.28.0.0/24 $net >/dev/null
    # The containers share this host's cores: each node runs its share as tokio workers, as
    # `ordo testnet` gives its processes (docs/performance.md, eleventh round).
    workers=$(( $(nproc) / n )); [ "$workers" -ge 1 ] || workers=1
    for i in $(seq 0 $((n-1))); do
      docker rm -f "ordo-node$i" >/dev/null 2>&1 || true
      docker volume create "ordo-data$i" >/dev/null
      docker run -d --name "ordo-node$i" --network $net --ip "172.28.0.$((10+i))" \
        -v "$dir:/net:ro" -v "$dir/node$i:/net/node$i" -v "ordo-data$i:/data" \
        -p "127.0.0.1:$((18080+i)):$((8080+i))" \
        -e RUST_LOG=info -e "TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-$workers}" ordo:local node --config "/net/node$i/config.toml" >/dev/null
      echo "ordo-node$i: api http://127.0.0.1:$((18080+i))"
    done
    ;;
  down)
    for i in $(seq 0 $((n-1))); do
      docker rm -f "ordo-node$i" >/dev/null 2>&1 || true
      docker volume rm "ordo-data$i" >/dev/null 2>&1 || true
    done
    docker network rm $net >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 up|down [DIR]" >&2; exit 2 ;;
esac
