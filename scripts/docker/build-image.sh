#!/usr/bin/env bash
# Builds the `ordo:local` image FROM scratch from a binary built here (there is no registry to
# pull a base image from). The binary's shared libraries (glibc, libstdc++ for RocksDB) and the
# dynamic loader are copied beside it, so the image holds nothing else.
#
# Usage: scripts/docker/build-image.sh [path/to/ordo]   (default: $CARGO_TARGET_DIR or target, release)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$root/target}/release/ordo}"
[ -x "$bin" ] || { echo "no binary at $bin: run cargo build --release first, or pass its path" >&2; exit 1; }

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/data"
cp "$bin" "$ctx/rootfs/bin/ordo"
# Every library ldd names, at the same path inside the image, plus the loader itself.
ldd "$bin" | grep -oE '/[^ ]+' | sort -u | while read -r lib; do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/bin/ordo"]
DOCKERFILE
docker build -q -t ordo:local "$ctx"
echo "built ordo:local from $bin"
