# TEST ONLY: Prometheus from Debian's `prometheus` package (2.42.0, as the pinned image), standing in
# for `prom/prometheus:v2.42.0`, which cannot be pulled on the CI machine. scripts/compose_images.sh
# tags it with the pinned image's name, so docker-compose.yml runs unchanged against it. It keeps
# what the compose file relies on: /bin/prometheus as the entrypoint, /etc/prometheus for the mounted
# config and rules, /prometheus (owned by nobody, the user it runs as) for the data volume, port 9090,
# and a `wget` for the healthcheck (the official image's busybox has one).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# policy-rc.d: the package's postinst would start its own server; nothing is started during a build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
    && mkdir -p /prometheus /etc/prometheus \
    && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
