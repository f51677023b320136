# Globomantics node image (multi-stage). Not built or run on the development
# machines (no container runtime there): kept small and checked by reading.
#
#   docker build -t globomantics .                          # the node + dashboard
#   docker build -t globomantics-data --target fetch-data . # the data fetcher
#
# MovieLens may not be redistributed, so no image contains it: the `fetch-data`
# image downloads it into a volume at start (compose service `data`, Kubernetes
# init container), and the nodes read it from there.

FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-unknown-unknown \
 && cargo install trunk --version 0.21.14 --locked \
 && cargo install wasm-bindgen-cli --version 0.2.130
WORKDIR /src
COPY . .
RUN trunk build --release \
 && cargo build --release -p node

FROM python:3.12-slim AS fetch-data
WORKDIR /work
COPY scripts/fetch-data.sh scripts/fetch-data.sh
VOLUME /work/data
ENTRYPOINT ["bash", "scripts/fetch-data.sh"]

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 globomantics \
 && mkdir -p /var/lib/globomantics /data \
 && chown globomantics /var/lib/globomantics
COPY --from=build /src/target/release/node /usr/local/bin/node
COPY --from=build /src/dist /srv/dashboard
USER globomantics
ENV NODE_WEB_ROOT=/srv/dashboard \
    NODE_DATA=/data/ml-100k \
    NODE_STORE=/var/lib/globomantics \
    NODE_BIND=0.0.0.0:2551 \
    NODE_HTTP=0.0.0.0:8558
EXPOSE 2551 8558
# SIGTERM (docker stop, pod deletion) makes the node leave the cluster gracefully.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "run"]
