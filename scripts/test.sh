#!/usr/bin/env bash
# The whole test suite: unit tests, the store suite, the kill -9 crash test, the SPEC test
# vectors and the Python cross-check, the consensus simulation, and the end-to-end tests
# against the real `ordo` binary that this same build produces (testnet, admission, docker,
# chaos). It first installs what a fresh machine lacks (scripts/setup.sh --tests). The first run
# builds everything (15-20 minutes on 2 cores, most of it RocksDB); later runs are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
exec cargo test --workspace "$@"
