# syntax=docker/dockerfile:1
# Goldsmith's single image. The first argument picks the process (portal/docker_entrypoint.sh):
#   docker run IMAGE web | worker | scheduler | emulator | manage <command>
# docs/operations.md shows how docker-compose.yml wires them to PostgreSQL, Redis and Azure.

# ---- builder: resolve and install the pinned dependencies into a virtualenv ------------------
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --requirement /tmp/requirements.txt

# ---- final: the virtualenv, the code and the collected static files; no compilers -----------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GOLDSMITH_VAR_DIR=/app/var
RUN groupadd --system --gid 10001 goldsmith \
 && useradd --system --uid 10001 --gid goldsmith --home-dir /app --no-create-home --shell /usr/sbin/nologin goldsmith
COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The code stays owned by root: the portal's user can read it but not change it.
COPY manage.py ./
COPY portal ./portal
COPY builds ./builds
COPY web ./web
COPY api ./api
COPY emulator ./emulator
COPY templates ./templates
COPY static ./static

# Settings need a SECRET_KEY to load; this throw-away one exists only during this step.
# STATIC_MANIFEST=1 writes hashed, compressed files and their manifest, which a deployed
# portal (STATIC_MANIFEST defaults to on there) serves.
RUN STATIC_MANIFEST=1 SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput --verbosity 0 \
 && mkdir -p /app/var/emulator \
 && chown -R goldsmith:goldsmith /app/var

USER goldsmith
EXPOSE 8000 8443

# Only meaningful for the web role; docker-compose.yml gives the other roles their own check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4).status != 200)"]

ENTRYPOINT ["/app/portal/docker_entrypoint.sh"]
CMD ["web"]
