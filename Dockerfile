# syntax=docker/dockerfile:1
# Multi-stage build: dependencies are compiled in their own layer (cached until Cargo.toml or
# Cargo.lock change), then the workspace, then a slim non-root runtime image.

FROM rust:1.95-slim-bookworm AS build
# Cargo features of the image: `sqs` adds the SNS + SQS bus (EMPORIUM_BUS=sqs), `otlp` trace
# export (EMPORIUM_OTLP_ENDPOINT); `--build-arg FEATURES=` builds a smaller image without them.
ARG FEATURES="sqs otlp"
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*

# 1. Dependency layer: the manifests with empty sources.
COPY Cargo.toml Cargo.lock ./
COPY crates/kernel/Cargo.toml crates/kernel/
COPY crates/platform/Cargo.toml crates/platform/
COPY crates/bus/Cargo.toml crates/bus/
COPY contexts/identity/Cargo.toml contexts/identity/
COPY contexts/identity/contracts/Cargo.toml contexts/identity/contracts/
COPY contexts/catalog/Cargo.toml contexts/catalog/
COPY contexts/catalog/contracts/Cargo.toml contexts/catalog/contracts/
COPY contexts/ordering/Cargo.toml contexts/ordering/
COPY contexts/ordering/contracts/Cargo.toml contexts/ordering/contracts/
COPY contexts/shipping/Cargo.toml contexts/shipping/
COPY contexts/shipping/contracts/Cargo.toml contexts/shipping/contracts/
COPY contexts/notifications/Cargo.toml contexts/notifications/
COPY contexts/notifications/contracts/Cargo.toml contexts/notifications/contracts/
COPY bench/Cargo.toml bench/
RUN for d in crates/kernel crates/platform crates/bus contexts/identity contexts/identity/contracts contexts/catalog \
        contexts/catalog/contracts contexts/ordering contexts/ordering/contracts contexts/shipping \
        contexts/shipping/contracts contexts/notifications contexts/notifications/contracts; do mkdir -p $d/src && echo "" > $d/src/lib.rs; done \
    && mkdir -p src bench/src && echo "fn main() {}" > src/main.rs && echo "" > src/lib.rs \
    && echo "fn main() {}" > bench/src/main.rs \
    && for c in identity catalog ordering shipping notifications; do mkdir -p migrations/$c; done \
    && cargo build --release --locked --workspace --features "$FEATURES" 2>/dev/null || true

# 2. The workspace itself.
COPY . .
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
    && cargo build --release --locked --bin emporium --features "$FEATURES" \
    && cp target/release/emporium /usr/local/bin/emporium

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/emporium --create-home emporium
COPY --from=build /usr/local/bin/emporium /usr/local/bin/emporium
USER emporium
WORKDIR /var/lib/emporium
ENV EMPORIUM_LISTEN=0.0.0.0:8080 \
    EMPORIUM_DATA_DIR=/var/lib/emporium/data \
    EMPORIUM_LOG_FORMAT=json
VOLUME ["/var/lib/emporium/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["/usr/local/bin/emporium"]
CMD ["serve"]
