# Image of the sidecar: slim Python, the CPU build of torch, a non-root user, the CLI as
# entrypoint. Build: docker build -t log-anomaly-sidecar:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SIDECAR_MAPPINGS_DIR=/app/mappings \
    SIDECAR_MODEL_DIR=/models \
    SIDECAR_LOG_FORMAT=json

# The CPU wheel of torch first (a fraction of the CUDA build's size), so installing the
# package below finds the requirement already met.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.4,<3"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY sidecar ./sidecar
COPY mappings ./mappings
RUN pip install . \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin sidecar \
    && mkdir -p /models \
    && chown 10001 /models

USER 10001
EXPOSE 8080
ENTRYPOINT ["log-anomaly-sidecar"]
CMD ["run"]
