# natsmon image: a multi-stage build, a small runtime and a non-root user.
# Build: docker build -t natsmon:latest .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin natsmon

FROM debian:bookworm-slim
# rustls carries its own roots for https; tini reaps and forwards SIGTERM so natsmon can
# flush logs and save checkpoints on `docker stop`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin natsmon \
    && mkdir -p /var/lib/natsmon \
    && chown natsmon /var/lib/natsmon
COPY --from=build /src/target/release/natsmon /usr/local/bin/natsmon
USER 10001
VOLUME ["/var/lib/natsmon"]
EXPOSE 7778
ENV NATSMON_STATE_DIR=/var/lib/natsmon
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/natsmon"]
