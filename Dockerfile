# syntax=docker/dockerfile:1
# Portcullis container image: build the binary in the Rust image (its line
# tables stripped; panics still name functions), then run
# it from an image that holds only the binary, the four shared libraries it
# links (glibc's libc, libm, the loader, libgcc_s), a passwd entry and the
# demo configuration: no shell, no package manager, a non-root user, and a
# root file system that may be mounted read-only.
#
#   docker build -t portcullis .                 (podman: the same)
#   docker run --rm --read-only --cap-drop ALL --security-opt no-new-privileges \
#       -p 127.0.0.1:8080:8080 portcullis        (the demo on http://localhost:8080)
#
# Build arguments:
#   PGO=1   (the default) the fastest build: profile-guided and laid out
#           by BOLT (scripts/build-pgo.sh --bolt: an instrumented build,
#           trained against nginx with wrk, the optimised one, then BOLT's
#           layout from a second training, over HTTP, TLS and HTTP/2).
#           The builder installs nginx, wrk, curl, python3, redis-server,
#           openssl, nghttp2-client, and llvm-NN and bolt-NN of
#           rustc's LLVM (22 for Rust 1.95: Debian bookworm-security has
#           them) with apt-get. About 20 min on 2 cores.
#   PGO=0   the plain `cargo build --release` (about 11 min, no apt-get;
#           the same binary from the same source every time, where the
#           timed training makes each PGO binary a little different).
#   RUST_IMAGE  the builder image (default rust:1.95-bookworm).
#
# docs/install.md has the rest: configuration, secrets, health checks.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
ARG PGO=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY scripts/build-pgo.sh ./scripts/build-pgo.sh
COPY scripts/bench/lib.sh ./scripts/bench/lib.sh
COPY scripts/pgo ./scripts/pgo
COPY deploy/container/gateway.toml /out/etc/portcullis/gateway.toml
# The crate registry and target/ are build caches: a rebuild after a source
# change compiles only the crate itself. The binary leaves the cache in the
# same step.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ "$PGO" = 1 ]; then \
        llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p') \
        && apt-get update \
        && apt-get install -y --no-install-recommends nginx wrk curl python3 redis-server \
            openssl nghttp2-client \
            "llvm-$llvm" "bolt-$llvm" \
        && rm -rf /var/lib/apt/lists/* \
        && scripts/build-pgo.sh --bolt > /tmp/pgo.out \
        && bin=$(tail -n 1 /tmp/pgo.out); \
    else \
        cargo build --release --locked --bin portcullis \
        && bin=target/release/portcullis; \
    fi \
    && install -D -m 0755 "$bin" /out/usr/local/bin/portcullis \
    && strip --strip-debug /out/usr/local/bin/portcullis
# The run-time file system: every library ldd names (copied with its path),
# the CA bundle (for https identity providers, [[provider]]), a user and a
# group (65532, as distroless's "nonroot"), and name lookup through
# /etc/hosts, then DNS.
RUN ldd /out/usr/local/bin/portcullis \
    && for lib in $(ldd /out/usr/local/bin/portcullis | grep -o '/[^ ]*'); do cp -L --parents "$lib" /out; done \
    && cp -L --parents /etc/ssl/certs/ca-certificates.crt /out \
    && echo 'portcullis:x:65532:65532:portcullis:/nonexistent:/sbin/nologin' > /out/etc/passwd \
    && echo 'portcullis:x:65532:' > /out/etc/group \
    && echo 'hosts: files dns' > /out/etc/nsswitch.conf \
    && mkdir /out/tmp && chmod 1777 /out/tmp \
    && /out/usr/local/bin/portcullis --version

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG PGO=1
LABEL org.opencontainers.image.title="Portcullis" \
      io.portcullis.build.pgo="${PGO}" \
      org.opencontainers.image.description="An authenticating reverse proxy with scanner-safe email sign-in" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.documentation="docs/install.md" \
      org.opencontainers.image.base.name="scratch"
COPY --from=build /out/ /
USER 65532:65532
ENV PORTCULLIS_CONFIG=/etc/portcullis/gateway.toml
# 8080: the gateway (server.listen); 9180: the admin listener's probes.
EXPOSE 8080 9180
# `portcullis health` GETs http://127.0.0.1:9180/ping (the admin listener of
# the shipped configuration; keep [admin] listen in yours, or pass --url).
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/portcullis", "health"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
