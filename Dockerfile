# The adapter service (`burgas-adapter serve`) as a non-root user; see docker-compose.yml and
# docs/orion-ld.md. Build context: the repository (.dockerignore keeps .venv, .state and tests out).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 burgas \
 && useradd --system --uid 10001 --gid burgas --home-dir /var/lib/burgas --create-home burgas

WORKDIR /opt/burgas
COPY pyproject.toml README.md ./
COPY adapter ./adapter
COPY data_models ./data_models
COPY ngsild_broker ./ngsild_broker
COPY config ./config
RUN pip install . && rm -rf build *.egg-info

# State (SQLite: sync state, outbox, quarantine) lives in the volume.
ENV BURGAS_STATE_DIR=/var/lib/burgas/state \
    BURGAS_SERVICE_PORT=8080
RUN install -d -o burgas -g burgas /var/lib/burgas/state
VOLUME ["/var/lib/burgas/state"]

USER burgas
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
# --config: the bundled pipeline file sits next to the sources, not inside the installed package.
CMD ["burgas-adapter", "serve", "--host", "0.0.0.0", "--config", "/opt/burgas/config/burgas.yaml"]
