#!/usr/bin/env bash
# The README's demo command: builds the node (skipping what is built) and starts a
# supervised three-node cluster on loopback with the launcher. Ctrl-C stops it all.
# Extra arguments go to `node demo` (for example `--nodes 5`).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== building the node (release)"
cargo build --release -p node
echo "== starting the demo cluster"
exec target/release/node demo "$@"
