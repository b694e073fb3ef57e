# One image for every Fixup process (services, migrations, the nginx exporter, backups).
# Build: docker build -t fixup:local .   (docker-compose.yml uses fixup:local)
# The generated repositories, the protobuf messages and the Swagger UI bundle are built
# here from sql/, proto/ and tools/swagger (offline: sqlc reads the committed types locks
# and fails loudly when one is stale).

# the bases: tools/deploy/images.py (NODE_IMAGE, PYTHON_IMAGE; tests/unit/test_images.py)
FROM node:24-trixie-slim AS swagger
WORKDIR /src/tools/swagger
COPY tools/swagger/package.json tools/swagger/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --omit=dev

FROM python:3.11-slim-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml ./
COPY lib lib
COPY codegen codegen
COPY services services
COPY observability observability
COPY tools tools
COPY migrations migrations
COPY sql sql
COPY proto proto
COPY docs/openapi docs/openapi
# the image's venv: the runtime and the one-off jobs (migrate, seed); the generators run
# from a venv of their own that stays in this stage (pyproject.toml's codegen extra);
# the versions are pyproject.toml's pins (hadolint reads '.[ops]' as an unpinned name)
# hadolint ignore=DL3013
RUN pip install ./codegen/runtime '.[ops]' \
    && python -m venv /opt/gen \
    && /opt/gen/bin/pip install ./codegen/runtime '.[codegen]'
# the sqlc plugin's launcher looks for the project's .venv
RUN ln -s /opt/gen /src/.venv \
    && /opt/gen/bin/python -m tools.sqlc generate \
    && /opt/gen/bin/python -m tools.proto gen \
    && rm /src/.venv
COPY --from=swagger /src/tools/swagger/node_modules tools/swagger/node_modules
RUN python -m tools.swag_config --out /src/var/docs && rm -rf tools/swagger/node_modules

FROM python:3.11-slim-bookworm
# pgBackRest: the backup CronJob (deploy/k8s/base/backup.yaml) runs it from this image; the
# same release as the PostgreSQL host's (tools/deploy/images.py PGBACKREST_VERSION)
ARG PGBACKREST_VERSION=2.45
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends "pgbackrest=${PGBACKREST_VERSION}-*" ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 --user-group fixup
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# the code is root's, read-only to the runtime user; the one place it writes is
# var/storage (users' STORAGE_DIR when no S3 is configured; an emptyDir in Kubernetes)
COPY --from=build /src /app
RUN install -d -o fixup -g fixup -m 0700 /app/var/storage
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOST=0.0.0.0
USER 10001:10001
EXPOSE 8101 8102 8103 8104 8105 9105 50051 9150
CMD ["python", "-m", "services.departments"]
