# syntax=docker/dockerfile:1
# The Packetra gateway as a container: `docker build -t packetra-gateway .`
# For an evaluation with PostgreSQL and a Litecoin node: compose.yaml beside this file.
# Linted with hadolint in tests/e2e/test_deployment.py; see docs/deployment.md for what
# was and was not run (no container engine on the test machines).

# --- build: a virtualenv with the gateway and its dependencies (wheels only) ----------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/gateway/.venv
COPY pyproject.toml ./
# The dependencies at the locked versions, each file checked against its hash
# (requirements-runtime.lock: requirements.lock without the development tools; `make lock`).
COPY requirements-runtime.lock requirements-build.lock ./
COPY gateway ./gateway
COPY chains ./chains
COPY webhooks ./webhooks
# pip and setuptools at their locked versions and hashes first (requirements-build.lock),
# then the dependencies; the gateway itself goes in without dependencies and is built
# with that setuptools (no isolated build fetching its own): nothing outside the locks is
# installed. The installers leave the virtualenv at the end.
RUN /opt/gateway/.venv/bin/pip install --only-binary=:all: --require-hashes --no-deps \
       -r requirements-build.lock \
    && /opt/gateway/.venv/bin/pip install --prefer-binary --require-hashes --no-deps \
       -r requirements-runtime.lock \
    && /opt/gateway/.venv/bin/pip install --no-deps --no-build-isolation . \
    && /opt/gateway/.venv/bin/pip uninstall --yes uv setuptools wheel pip

# --- runtime: the virtualenv only, run by an unprivileged user ------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/opt/gateway/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BCL_DATA_DIR=/var/lib/gateway/bitcoinlib \
    GATEWAY_CONFIG=/etc/gateway/gateway.toml \
    GATEWAY_SERVER__HOST=0.0.0.0
# pg_dump and pg_restore for `gateway backup` on PostgreSQL (Debian's 15: keep the server
# at 15, as compose.yaml does). The base image's pip and setuptools go: nothing installs
# anything at run time.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /var/lib/gateway \
       --create-home --shell /usr/sbin/nologin gateway
COPY --from=build /opt/gateway/.venv /opt/gateway/.venv
USER 10001:10001
WORKDIR /var/lib/gateway
VOLUME ["/var/lib/gateway"]
# 8080: the public listener; 9464: /metrics and /readyz (publish to monitoring only).
EXPOSE 8080 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
