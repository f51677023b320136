#!/usr/bin/env bash
# Builds the dashboard into dist/ (every node serves it at `/`): installs the tools if
# needed, runs `trunk build --release --offline` (profile web-release, see index.html),
# then prints the gzipped size of the .wasm and .js and fails above the budget.
set -euo pipefail
cd "$(dirname "$0")/.."

# The page carries the simulator and the membership core for simulated mode (issue
# 18: the whole page at most 350 KB gzipped; wasm + js at most 345 KB leaves room for
# the css, the html and the icon, about 5 KB).
BUDGET_KB=${WEB_SIZE_BUDGET_KB:-345}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

./scripts/install-web-tools.sh
echo "build-web: trunk build --release --offline"
trunk build --release --offline

total=0
shopt -s nullglob
for f in dist/*.wasm dist/*.js; do
    raw=$(stat -c %s "$f")
    gz=$(gzip -9 -c "$f" | wc -c)
    total=$((total + gz))
    printf 'build-web: %-48s %8d bytes, %7d gzipped\n' "$f" "$raw" "$gz"
done
printf 'build-web: wasm + js gzipped: %d bytes (%s KB; budget %d KB)\n' \
    "$total" "$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1024 }')" "$BUDGET_KB"
if [ "$total" -gt $((BUDGET_KB * 1024)) ]; then
    echo "build-web: over the ${BUDGET_KB} KB budget" >&2
    exit 1
fi
