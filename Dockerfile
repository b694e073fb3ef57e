# One image for every Fixup process (services, migrations, the nginx exporter).
# Build: docker build -t fixup:latest .   (docker-compose.yml uses fixup:latest)
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
RUN pip install .

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 --user-group fixup
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=fixup:fixup --from=build /src /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOST=0.0.0.0
USER 10001:10001
EXPOSE 8101 8102 8103 8104 8105 9105 50051 9150
CMD ["python", "-m", "services.departments"]
