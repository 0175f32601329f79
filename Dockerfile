# riskcast service image. Dependencies are installed before the source so that code changes
# reuse the cached dependency layer. Runs as a non-root user.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RISKCAST_HOME=/var/lib/riskcast

WORKDIR /app

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# 1. dependencies only: the runtime lock (the development lock's pins without test and lint
#    tools; `make lock` writes both), installed the way the Makefile installs its lock
COPY requirements-runtime.lock ./
RUN pip install --upgrade pip uv==0.13.9 \
    && uv pip sync --system requirements-runtime.lock

# 2. the source
COPY pyproject.toml README.md ./
COPY riskcast ./riskcast
COPY features ./features
COPY training ./training
COPY serving ./serving
COPY fairness ./fairness
COPY configs ./configs
RUN uv pip install --system --no-deps . \
    && useradd --create-home --uid 10001 riskcast \
    && mkdir -p "$RISKCAST_HOME" && chown riskcast "$RISKCAST_HOME"

ENV RISKCAST_CONFIG_DIR=/app/configs
USER riskcast
EXPOSE 8000

# The service on the `champion` model (Step 4).
CMD ["riskcast", "serve", "--host", "0.0.0.0", "--port", "8000"]
