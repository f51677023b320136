#!/usr/bin/env bash
# The README's demo command: installs what is missing (the wasm32 target,
# wasm-bindgen-cli at the Cargo.lock version, trunk, the MovieLens data), builds the
# dashboard and the node (skipping what is built), and starts a supervised
# three-node cluster on loopback with the launcher. Ctrl-C stops it all.
# Extra arguments go to `node demo` (for example `--nodes 5`, or `--public true
# --operator-token ...` for a hosted demo).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
echo "== data: MovieLens 100k"
./scripts/fetch-data.sh
echo "== crates"
cargo fetch --locked
echo "== dashboard"
./scripts/build-web.sh
echo "== node (release)"
cargo build --release -p node
echo "== starting the demo cluster"
exec target/release/node demo "$@"
