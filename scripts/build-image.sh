#!/usr/bin/env bash
# Builds the `globomantics` image offline, from this repository alone (no registry,
# no base image): a static x86_64-unknown-linux-musl build of `node` (installing
# Debian's musl-tools for it if missing) and the built
# dashboard, laid out as a whole root filesystem (scripts/assemble-rootfs.sh) and
# copied into `FROM scratch` (the Dockerfile's `offline` target). Then, for
# `docker-compose up`: fetches MovieLens into ./data on the host (bind-mounted
# read-only; never baked into an image) unless --no-data, and writes .env with a
# random NODE_SECRET and NODE_TOKEN on first run. Skips whatever is already there.
# Prints the image's size.
#
#   scripts/build-image.sh [--no-data] [--web-built] [--tag globomantics:latest]
# --web-built: dist/ was just built (as scripts/test.sh does): do not build it again.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
tag=globomantics:latest
fetch_data=1
build_web=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-data) fetch_data=0 ;;
    --web-built) build_web=0 ;;
    --tag) tag="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }
rustup target list --installed | grep -qx x86_64-unknown-linux-musl \
  || rustup target add x86_64-unknown-linux-musl
# ring (rustls's cryptography, for the HTTP API's optional TLS) compiles C and
# assembly for the musl target with the musl toolchain (Debian's musl-tools).
if ! command -v x86_64-linux-musl-gcc >/dev/null; then
  echo "== installing musl-tools (the C compiler for the musl target)"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools
fi
if [ "$build_web" = 1 ] || [ ! -f dist/index.html ]; then
  ./scripts/build-web.sh
fi
echo "== node: static musl build"
cargo build --locked --release --target x86_64-unknown-linux-musl -p node --bin node
./scripts/assemble-rootfs.sh
echo "== docker build --target offline -t $tag"
DOCKER_BUILDKIT=0 docker build --quiet --target offline -t "$tag" . >/dev/null 2>&1 \
  || DOCKER_BUILDKIT=0 docker build --target offline -t "$tag" .
bytes=$(docker image inspect --format '{{.Size}}' "$tag")
echo "== image $tag: $bytes bytes ($(( bytes / 1024 / 1024 )) MiB)"
if [ "$fetch_data" = 1 ]; then
  ./scripts/fetch-data.sh
fi
if [ ! -f .env ]; then
  umask 077
  printf 'NODE_SECRET=%s\nNODE_TOKEN=%s\n' "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" \
    "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" > .env
  echo "== wrote .env with a random NODE_SECRET and NODE_TOKEN"
fi
