#!/usr/bin/env bash
# The README's first command: install what a fresh machine lacks (scripts/setup.sh), build the
# release binary and start a 4-validator testnet in ./testnet (`ordo testnet`; any arguments are
# passed on, e.g. `scripts/testnet.sh --consensus raft --dir net2`). The first build takes
# 15-20 minutes on 2 cores (most of it RocksDB's C++); later starts take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release -- testnet "$@"
