#!/usr/bin/env bash
# The whole test suite: unit tests, the store suite, the kill -9 crash test, the SPEC test
# vectors and the Python cross-check, the consensus simulation, and the CLI end-to-end tests
# against the real `ordo` binary that this same build produces.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace "$@"
