# syntax=docker/dockerfile:1
# gke-bot: one image for every process (`serve`, `socket`, `worker`, and `sweep` / `notifications` /
# the scheduler where they exist); the Kubernetes manifests choose the process with `args`.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/gke-bot/gke-bot:VERSION .
#
# Dependencies come from the same constraints.txt that CI tests with. The final stage has no
# compiler, no pip cache, no source tree: a virtualenv with the wheel installed, run as a non-root user.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The project's own wheel (only what pyproject.toml packages: bot/, checks/), with the gettext
# catalogs compiled into it by setup.py's build hook (Babel, pinned like everything else).
COPY pyproject.toml setup.py README.md constraints.txt ./
COPY bot ./bot
COPY checks ./checks
RUN PIP_CONSTRAINT=/src/constraints.txt pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/gke-bot \
 && /opt/gke-bot/bin/pip install --no-cache-dir --only-binary=:all: -c constraints.txt /wheels/gke_bot-*.whl \
 && /opt/gke-bot/bin/python -m compileall -q /opt/gke-bot/lib \
 && /opt/gke-bot/bin/gke-bot --help >/dev/null

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="gke-bot" \
      org.opencontainers.image.description="Slack chat-ops bot: why is my GKE cluster refusing me?" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 gkebot \
 && useradd --system --uid 10001 --gid gkebot --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin gkebot
COPY --from=build /opt/gke-bot /opt/gke-bot
# Bytecode was compiled at build time: nothing is written at run time (readOnlyRootFilesystem).
ENV PATH=/opt/gke-bot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
# 3000: Slack events (serve); 9090: /metrics (GKE_BOT_METRICS_PORT)
EXPOSE 3000 9090
# Kubernetes probes (deploy/) check health; a Docker HEALTHCHECK would be ignored there.
HEALTHCHECK NONE
ENTRYPOINT ["gke-bot"]
CMD ["serve"]
