# syntax=docker/dockerfile:1
#
# optin: multi-stage build.
#   docker build -t optin .
#   docker run --rm -p 8080:8080 -v optin-data:/app/data optin
#
# With no configuration the container starts the development setup (embedded store in
# /app/data, mail written as .eml files to /app/data/mail, generated keys in
# /app/data/dev-keys.toml). For production pass OPTIN_<SECTION>__<KEY> variables or
# mount an optin.toml and run `serve --config /path/to/optin.toml`.

# redb 4 needs Rust >= 1.90; any newer 1.x builds this crate.
ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build

# Dependency layer: build every dependency against stub sources, so that changing the
# crate's own code does not rebuild them. Rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src \
 && rm -rf target/release/optin target/release/deps/optin-* target/release/deps/liboptin-* target/release/.fingerprint/optin-*

# The crate itself. The templates (email-templates/, page-templates/) and openapi.yaml
# are built into the binary.
COPY . .
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/optin /out/optin

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 optin \
 && useradd --system --uid 10001 --gid optin --home-dir /app --no-create-home --shell /usr/sbin/nologin optin \
 && mkdir -p /app/data \
 && chown -R optin:optin /app

COPY --from=builder /out/optin /usr/local/bin/optin

USER 10001:10001
WORKDIR /app

# The default bind (127.0.0.1:8080) would not be reachable from outside the container.
ENV OPTIN_SERVER__BIND=0.0.0.0:8080
EXPOSE 8080

# The slim image has no curl: `optin health` asks GET /readyz on the configured bind
# (0.0.0.0 is reached over loopback) and exits 0 only on a 200 within 3 seconds. It reads
# the same OPTIN_* variables as `serve`; with a mounted optin.toml, pass it the same
# --config. Orchestrators with their own probes can use GET /healthz and GET /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/optin", "health"]

ENTRYPOINT ["/usr/local/bin/optin"]
CMD ["serve"]
