# cw-support-api as a container: for the Elastic Beanstalk Docker platform (single container,
# nginx in front forwards to the EXPOSEd port) or any container host behind an HTTPS load
# balancer. docs/deploy.md has the steps.
#
#   docker build -t cw-support-api .
#   docker run --rm -p 5000:5000 -e API_TOKENS=... cw-support-api   # local backend, dry-run desk
#   docker run --rm -p 5000:5000 -e BACKEND=aws ... cw-support-api

# ---- build ---------------------------------------------------------------------------------
FROM rust:1-slim-bookworm AS builder
WORKDIR /build

# Strip symbols too (release builds already drop debug info) without touching Cargo.toml:
# about 12.7 MB -> 10.1 MB. The cost: a panic backtrace shows addresses, not function names.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols

# Dependencies in their own layer: build them once against a dummy lib and main with the real
# manifest and lock file, so a change under src/ does not rebuild every crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

COPY src ./src
# COPY keeps the files' own modification times, which can be older than the dummy build:
# touch the crate roots so cargo rebuilds the crate itself rather than keeping the dummy.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && mkdir -p /out/data \
    && cp target/release/cw-support-api /out/

# ---- runtime -------------------------------------------------------------------------------
# distroless/cc: glibc, libgcc, CA certificates (SNS certificate fetches and the AWS SDK use
# the system roots) and a nonroot user (65532), no shell or package manager.
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=builder --chown=65532:65532 /out/data /data
COPY --from=builder /out/cw-support-api /usr/local/bin/cw-support-api

# DATA_DIR is used by the local backend only (BACKEND=aws keeps nothing on disk); mount a
# volume on /data to keep the local ledger across restarts.
ENV PORT=5000 BIND=0.0.0.0 LOG_FORMAT=json DATA_DIR=/data
EXPOSE 5000
USER 65532:65532

ENTRYPOINT ["/usr/local/bin/cw-support-api"]
CMD ["serve"]
