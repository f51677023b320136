#!/usr/bin/env bash
# Installs what building the dashboard (web/) needs, skipping whatever is already there:
#   - the wasm32-unknown-unknown Rust target (rustup),
#   - wasm-bindgen-cli at exactly the version of `wasm-bindgen` in Cargo.lock (the CLI
#     and the library must match),
#   - trunk 0.21.14 (0.22 needs a newer rustc than this project's toolchain).
# Safe to run again and again; it only says what it checks and what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

say() { echo "install-web-tools: $*"; }

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "wasm32-unknown-unknown target: present"
else
    say "wasm32-unknown-unknown target: adding with rustup"
    rustup target add wasm32-unknown-unknown
fi

want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; if ($1 == "version") { gsub(/"/, "", $3); print $3; exit } }' Cargo.lock)
if [ -z "$want" ]; then
    echo "install-web-tools: no wasm-bindgen in Cargo.lock (is web/ a workspace member?)" >&2
    exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" = "$want" ]; then
    say "wasm-bindgen-cli $want: present"
else
    say "wasm-bindgen-cli: ${have:-missing}, Cargo.lock wants $want: installing (a few minutes)"
    cargo install wasm-bindgen-cli --version "$want"
fi

trunk_have=$(trunk --version 2>/dev/null | awk '{ print $2 }' || true)
if [ -n "$trunk_have" ]; then
    say "trunk $trunk_have: present"
    case "$trunk_have" in
        0.21.*) ;;
        *) say "note: trunk $trunk_have is not 0.21.x; if it fails, run: cargo install trunk --version $TRUNK_VERSION --locked --force" ;;
    esac
else
    say "trunk: missing: installing $TRUNK_VERSION (several minutes)"
    cargo install trunk --version "$TRUNK_VERSION" --locked
fi
