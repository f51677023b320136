#!/usr/bin/env bash
# Lays out the image's whole root filesystem in target/image/rootfs from a static
# musl build of `node` and the built dashboard, so that the image needs no base image:
#   /usr/local/bin/node        the node (stripped of debug info)
#   /srv/dashboard             the built dashboard (dist/)
#   /var/lib/globomantics      the store (the Dockerfile copies target/image/store, an
#                              empty folder, there owned by uid 10001: volumes inherit it)
#   /data                      where MovieLens is mounted (read-only)
#   /etc/passwd, /etc/group    the unprivileged user `globomantics` (10001)
# Used by scripts/build-image.sh and by the Dockerfile's from-source stage.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=target/x86_64-unknown-linux-musl/release/node
[ -x "$binary" ] || { echo "missing $binary: build it first" >&2; exit 1; }
[ -f dist/index.html ] || { echo "missing dist/: run scripts/build-web.sh first" >&2; exit 1; }
root=target/image/rootfs
rm -rf "$root" target/image/store
mkdir -p target/image/store
mkdir -p "$root/usr/local/bin" "$root/srv" "$root/var/lib" "$root/data" \
  "$root/etc" "$root/tmp"
objcopy --strip-debug "$binary" "$root/usr/local/bin/node" 2>/dev/null || cp "$binary" "$root/usr/local/bin/node"
cp -r dist "$root/srv/dashboard"
printf 'root:x:0:0:root:/:/sbin/nologin\nglobomantics:x:10001:10001:globomantics:/var/lib/globomantics:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nglobomantics:x:10001:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
echo "== root filesystem in $root ($(du -sh "$root" | cut -f1))"
