# owui-meter: one process, one SQLite file in the /app/data volume.
# Elsewhere: docker build -t owui-meter .   (the base defaults to the official python:3.12-slim)
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    METER_DATA_DIR=/app/data \
    METER_HOST=0.0.0.0 \
    METER_PORT=45000

# python3 and venv only where the base lacks them; DejaVu fonts for the PDF statements
# hadolint ignore=DL3008,SC2086
RUN set -eux; \
    packages="fonts-dejavu-core"; \
    command -v python3 >/dev/null || packages="$packages python3 python3-venv"; \
    apt-get update; \
    apt-get install -y --no-install-recommends $packages; \
    rm -rf /var/lib/apt/lists/*; \
    python3 -m venv /opt/venv; \
    useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin meter; \
    mkdir -p /app/data; \
    chown meter /app/data

WORKDIR /app
COPY requirements.lock ./
# PIP_CERT: a CA bundle for builds behind a TLS-inspecting proxy (unset: nothing changes)
ARG PIP_CERT
RUN pip install --no-cache-dir --no-compile -r requirements.lock
COPY pyproject.toml README.md ./
COPY owui_meter ./owui_meter
RUN pip install --no-cache-dir --no-compile --no-deps . && rm -rf /app/owui_meter /app/pyproject.toml /app/README.md /app/build

USER 10001
VOLUME ["/app/data"]
EXPOSE 45000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthcheck' % os.environ.get('METER_PORT', '45000'), timeout=4)"]
CMD ["owui-meter", "serve"]
