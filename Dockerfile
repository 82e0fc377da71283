# Multi-stage build: compile with cache mounts, run as a non-root user in a slim image.
#   docker build -t tollgate . && docker run -p 8080:8080 tollgate
# The image runs deploy/docker/config.yaml unless you mount your own config over it.
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
COPY deploy/docker/config.yaml /etc/tollgate/tollgate.yaml
USER tollgate
WORKDIR /var/lib/tollgate
VOLUME /var/lib/tollgate
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD ["/usr/local/bin/tollgate", "healthcheck", "--config", "/etc/tollgate/tollgate.yaml"]
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["run", "--config", "/etc/tollgate/tollgate.yaml"]
