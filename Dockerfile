# syntax=docker/dockerfile:1
#
# The segments service image: `docker build -t segments .`, or `docker compose build`.
# Stage 1 builds wheels for the project and its runtime dependencies (no dev extras);
# stage 2 installs only those wheels on a clean slim base and runs as a non-root user.

FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts/constraints.txt ./scripts/
COPY app ./app
# The project's wheel plus one wheel per runtime dependency (binary wheels from PyPI:
# no compiler is needed, so none is installed), at the versions CI last passed with.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c scripts/constraints.txt .


FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="segments" \
      org.opencontainers.image.description="Real-time customer segmentation: training, model store, assignment API" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SEGMENTS_MODEL_STORE=/data/models \
    SEGMENTS_DATA_DIR=/data/segments

# Install from the builder's wheels only (bind-mounted, so they never land in a layer),
# then add the non-root user that owns the data folder and the working folder.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl \
    && groupadd --system --gid 10001 segments \
    && useradd --system --no-log-init --uid 10001 --gid segments --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin segments \
    && install -d -o segments -g segments -m 0750 /app /data /data/models /data/segments

WORKDIR /app
# The example training configs (read-only for the service user).
COPY examples ./examples

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# Liveness through the stdlib: the slim base has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["segments"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
