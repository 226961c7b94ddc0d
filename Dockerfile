# One image for every btcmlops service (feed, trainer, inference service, dashboard, init) and the
# MLflow server: the project already depends on mlflow, pymysql and boto3.
# The base images are build arguments whose defaults are the real pinned images; a machine that cannot
# pull them builds local stand-ins and names them here (`make test-compose` does: scripts/compose_images.sh).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8
FROM ${UV_IMAGE} AS uv

# Build stage: uv installs exactly the lock file into /app/.venv, compiled to bytecode.
# A machine whose TLS is intercepted gives its CA bundle as the build secret `ca_bundle`
# (`--secret id=ca_bundle,src=...`): it is used for the download only, never written into a layer.
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (a layer that only changes with the lock file), then the project itself.
COPY pyproject.toml uv.lock README.md ./
# Optional extras: `--build-arg EXTRAS=xgboost` gives the GPU trainer's image (XGBoost with CUDA, NCCL).
ARG EXTRAS=""
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca_bundle \
    if [ -f /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi; \
    uv sync --frozen --no-dev --no-install-project ${EXTRAS:+--extra $EXTRAS}
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca_bundle \
    if [ -f /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi; \
    uv sync --frozen --no-dev --no-editable ${EXTRAS:+--extra $EXTRAS}

# Runtime stage: the venv and LightGBM's OpenMP runtime, nothing else; a non-root user.
FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin btcmlops
COPY --from=build /app/.venv /app/.venv
# OpenMP workers sleep instead of spinning while they wait (for anyone who raises the LightGBM threads:
# on cores shared with the other services, spinning waiters slow a fit several times).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OMP_WAIT_POLICY=PASSIVE \
    BTCMLOPS_HOME=/home/btcmlops/.btcmlops
USER btcmlops
WORKDIR /home/btcmlops
EXPOSE 5000 8000 8501
CMD ["btcmlops", "--help"]
