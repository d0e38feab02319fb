# PropOps Sandbox in a container (README, "Run it in Docker"):
#
#   docker build -t propops-sandbox .
#   docker run --rm -p 8080:8080 propops-sandbox                       # in memory, seed 42
#   docker run --rm -p 8080:8080 -e PROPOPS_SANDBOX_SEED=7 -e PROPOPS_SANDBOX_SCENARIO=flaky \
#       -e PROPOPS_SANDBOX_DATA_DIR=/data -v propops-data:/data propops-sandbox   # state kept in a volume
#
# Every PROPOPS_SANDBOX_* variable works as with the CLI; arguments after the image name replace `serve`
# (`docker run --rm propops-sandbox scenarios`). tests/test_docker.py lints this file with hadolint and
# replays its COPY, install, ENV, WORKDIR, ENTRYPOINT, CMD and HEALTHCHECK outside Docker, so keep those
# instructions in the simple forms it reads.

# -- build: install the package and its dependencies into a venv (no pip cache; the build backend lives
#    only in pip's throw-away build environment) --------------------------------------------------------
FROM python:3.11-slim AS build

WORKDIR /src
COPY pyproject.toml README.md ./
COPY sandbox ./sandbox
COPY fixtures ./fixtures
COPY scenarios ./scenarios
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

# -- runtime: the venv alone, run by an unprivileged user ---------------------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="PropOps Sandbox" \
      org.opencontainers.image.description="A local, stateful fake of the PropOps REST API." \
      org.opencontainers.image.licenses="MIT"

# Inside a container the sandbox must listen on every interface to be reachable through -p.
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROPOPS_SANDBOX_HOST=0.0.0.0 \
    PROPOPS_SANDBOX_PORT=8080

# /data is created and owned here, before VOLUME: a new named volume starts as a copy of it, so the
# sandbox user can write its state there (a bind mount keeps the host directory's owner: use --user).
RUN groupadd --system --gid 10001 sandbox \
    && useradd --system --no-log-init --uid 10001 --gid sandbox --home-dir /data --shell /usr/sbin/nologin sandbox \
    && mkdir /data \
    && chown sandbox:sandbox /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /data
# Used only with PROPOPS_SANDBOX_DATA_DIR=/data; by default the state lives in memory.
VOLUME /data
USER 10001:10001
EXPOSE 8080

# The unauthenticated heartbeat, on whatever port PROPOPS_SANDBOX_PORT says; no curl in a slim image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/api/system/heartbeat?health_check=1' % os.environ.get('PROPOPS_SANDBOX_PORT', '8080'), timeout=4)"]

# Exec form: the sandbox is PID 1 and gets `docker stop`'s SIGTERM itself; it shuts down gracefully,
# writes its state to the data dir and exits 0.
ENTRYPOINT ["propops-sandbox"]
CMD ["serve"]
