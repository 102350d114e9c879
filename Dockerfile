# strata: build on Debian 12 (bookworm), run as a non-root user.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN meson setup /build --buildtype=release -Dtests=disabled \
 && ninja -C /build \
 && install -D -m 0755 /build/strata /out/usr/local/bin/strata \
 && install -D -m 0644 config/examples/docker.yaml /out/etc/strata/strata.yaml

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh runtime && apt-get install -y -qq --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && useradd --system --no-create-home --shell /usr/sbin/nologin strata
COPY --from=build /out/ /
USER strata
# The proxy listener and the admin listener (health, stats, metrics).
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8081/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/strata"]
CMD ["-c", "/etc/strata/strata.yaml"]
