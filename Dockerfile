# sentrymesh in a container. Build:
#   docker build -t sentrymesh .
# Run an interface configured by ./sm0.toml (its key file beside it); the
# daemon needs the TUN device and CAP_NET_ADMIN, and the host's network to
# carry the tunnel:
#   docker run -d --name sm0 --network host --cap-add NET_ADMIN \
#       --device /dev/net/tun -v "$PWD:/etc/sentrymesh:ro" \
#       -v sentrymesh-state:/var/lib/sentrymesh sentrymesh up -c /etc/sentrymesh/sm0.toml
# `docker exec sm0 wg show` shows its peers; `docker exec sm0 sentrymesh
# reload` reloads and prints what changed, or fails with why the file was
# refused (`docker kill -s HUP sm0` reloads too, without the answer).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sentrymesh

FROM debian:bookworm-slim
# wg for `wg show`, ip and ping for looking around.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        wireguard-tools iproute2 iputils-ping \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sentrymesh /usr/local/bin/sentrymesh
# The name wg-quick can use for a userspace implementation.
RUN ln -s sentrymesh /usr/local/bin/sentrymesh-wg
ENTRYPOINT ["sentrymesh"]
CMD ["up", "-c", "/etc/sentrymesh/sm0.toml"]
