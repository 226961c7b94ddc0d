# One image for every btcmlops service (feed, trainer, inference service, dashboard, init) and the
# MLflow server: the project already depends on mlflow, pymysql and boto3.
# Build stage: uv installs exactly the lock file into /app/.venv, compiled to bytecode.
FROM python:3.11.14-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (a layer that only changes with the lock file), then the project itself.
COPY pyproject.toml uv.lock README.md ./
# Optional extras: `--build-arg EXTRAS=xgboost` gives the GPU trainer's image (XGBoost with CUDA, NCCL).
ARG EXTRAS=""
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project ${EXTRAS:+--extra $EXTRAS}
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable ${EXTRAS:+--extra $EXTRAS}

# Runtime stage: the venv and LightGBM's OpenMP runtime, nothing else; a non-root user.
FROM python:3.11.14-slim-bookworm AS runtime
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
