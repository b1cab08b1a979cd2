# The service's image: `docker compose up --build` (docker-compose.yml) builds
# and starts it. It listens on 0.0.0.0:8000 and keeps its state (the journal
# and order_book_state.json) in /data, a volume.

# The toolchain the project is built and tested with (see Cargo.toml: some
# dependencies are pinned to releases that build on it).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin orderbook \
    && cp target/release/orderbook /usr/local/bin/orderbook

FROM debian:bookworm-slim
COPY --from=build /usr/local/bin/orderbook /usr/local/bin/orderbook
# Runs as an unprivileged user that owns the state directory.
RUN useradd --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin orderbook \
    && mkdir /data && chown orderbook:orderbook /data
USER orderbook
WORKDIR /data
VOLUME /data
ENV ORDERBOOK_LISTEN=0.0.0.0:8000 \
    ORDERBOOK_DATA_DIR=/data
EXPOSE 8000
# Healthy while GET /health answers 200 (`--health-check` asks the address
# in ORDERBOOK_LISTEN, on loopback). The start period covers recovering a
# large state file and journal.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["orderbook", "--health-check"]
# SIGTERM (what `docker stop` sends) is a clean shutdown: answer what is in
# flight, write a snapshot, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["orderbook"]
