# The Globomantics node image: no base image at all. The node is one static musl
# binary; the image holds it, the built dashboard and an unprivileged user.
#
# Offline, from this repository alone (what the project's machines do: they have no
# registry). The script builds the binary and the dashboard on the host, lays out the
# root filesystem in target/image/rootfs and builds the first stage below:
#   scripts/build-image.sh                     # -> globomantics:latest
#
# With a registry, the same file builds everything inside Docker (BuildKit builds
# only the stages the last one needs):
#   docker build -t globomantics:latest .
#
# MovieLens may not be redistributed, so no image contains it: compose bind-mounts
# ./data (fetched on the host by scripts/fetch-data.sh) read-only at /data.

# ---- what every runnable stage shares ---------------------------------------------
FROM scratch AS runtime
ENV NODE_WEB_ROOT=/srv/dashboard \
    NODE_DATA=/data/ml-100k \
    NODE_STORE=/var/lib/globomantics \
    NODE_BIND=0.0.0.0:2551 \
    NODE_HTTP=0.0.0.0:8558
EXPOSE 2551 8558
# SIGTERM (docker stop, compose scale-down, pod deletion) makes the node leave the
# cluster gracefully and exit 0.
STOPSIGNAL SIGTERM
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/node", "run"]

# ---- offline: the root filesystem scripts/build-image.sh laid out ----------------
FROM runtime AS offline
COPY target/image/rootfs/ /
# The store is the one place the node writes; named volumes start with its owner.
COPY --chown=10001:10001 target/image/store/ /var/lib/globomantics/

# ---- from source, for a machine with a registry -----------------------------------
FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-unknown-unknown x86_64-unknown-linux-musl \
 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools
WORKDIR /src
COPY . .
RUN ./scripts/build-web.sh \
 && cargo build --locked --release --target x86_64-unknown-linux-musl -p node --bin node \
 && ./scripts/assemble-rootfs.sh

FROM runtime AS from-source
COPY --from=build /src/target/image/rootfs/ /
COPY --from=build --chown=10001:10001 /src/target/image/store/ /var/lib/globomantics/
