#!/usr/bin/env bash
# Fetches MovieLens 100k (F. M. Harper, J. A. Konstan, ACM TiiS 5(4), 2015; research and
# non-commercial use, no redistribution) from the PyPI wheel recbole==1.2.1, verifies the
# wheel's sha256, and extracts the ratings and items into data/ml-100k/ (git-ignored).
# Skips everything if the files are already there. Uses pip when present (it honours
# the machine's index settings), else python3's standard library against PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/ml-100k
sha=9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407
if [ -s "$dest/ml-100k.inter" ] && [ -s "$dest/ml-100k.item" ]; then
  echo "== MovieLens 100k already in $dest"
  exit 0
fi
if ! command -v python3 >/dev/null; then
  echo "== installing python3 (to fetch and unpack the wheel)"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3
fi
echo "== fetching MovieLens 100k (recbole==1.2.1 wheel from PyPI)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if python3 -m pip --version >/dev/null 2>&1; then
  # pip honours the machine's index, mirror and proxy settings.
  python3 -m pip download --quiet --no-deps --only-binary=:all: recbole==1.2.1 -d "$tmp"
else
  python3 - "$tmp" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen("https://pypi.org/pypi/recbole/1.2.1/json", timeout=60) as r:
    wheel = next(u for u in json.load(r)["urls"] if u["filename"].endswith(".whl"))
urllib.request.urlretrieve(wheel["url"], f"{sys.argv[1]}/{wheel['filename']}")
PY
fi
wheel=$(ls "$tmp"/recbole-1.2.1-*.whl)
echo "$sha  $wheel" | sha256sum --check --quiet
mkdir -p "$dest"
python3 - "$wheel" "$dest" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("ml-100k.inter", "ml-100k.item"):
        with open(f"{dest}/{name}", "wb") as f:
            f.write(z.read(f"recbole/dataset_example/ml-100k/{name}"))
PY
echo "== MovieLens 100k in $dest ($(wc -l < "$dest/ml-100k.inter") rating lines)"
