# Multi-stage build: compile with cache mounts, run as a non-root user in a slim image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked && cp target/release/tollgate /tollgate

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /var/lib/tollgate tollgate \
    && mkdir -p /etc/tollgate /var/lib/tollgate && chown tollgate /var/lib/tollgate
COPY --from=build /tollgate /usr/local/bin/tollgate
COPY config.example.yaml /etc/tollgate/tollgate.yaml
USER tollgate
WORKDIR /var/lib/tollgate
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["run", "--config", "/etc/tollgate/tollgate.yaml"]
