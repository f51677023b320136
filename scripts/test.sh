#!/usr/bin/env bash
# The README's test command: installs what the tests need (skipping what is present),
# then runs format and lint checks, every test, and the wasm32 build of the core.
set -euo pipefail
cd "$(dirname "$0")/.."
began=$(date +%s)
step() { echo "== [$(( $(date +%s) - began ))s] $*"; }

step "toolchain: rustfmt, clippy, wasm32 target"
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --release -- -D warnings

step "tests: unit, scenarios, merge properties, ${SIM_SEEDS:-1000} seeded fault schedules"
cargo test --workspace --release

step "wasm32 build of the membership core"
cargo build -p shared --target wasm32-unknown-unknown --release

step "all passed"
