# Fixup — every entry point. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install lint format typecheck test test-fast test-reliability test-lists test-unit migrate-up migrate-down migrate-status \
	migrate-new migrate-lint migrate-compat seed check-db sqlc sqlc-check sqlc-types sqlc-vet sqlc-e2e codegen-golden run bench swag-gen swag-check keys rotate nginx-conf nginx-compose swag-config dev proto proto-check \
	procfile swagger-deps deploy-gen up down logs mutate mutate-sample new-service remove-service upgrade-check \
	check-service scan-deps deploy-lint api-lint api-lint-deps failover-drill failover-writers \
	backup-servers backup restore restore-drill rotation-drill test-closed-checkout test-pgbouncer \
	release-drill revocation-loss bench-growth-10m

##@ Setup and code quality (tools/packages.py)
help: ## list the targets by concern (a `##@ Concern` line heads each run of them)
	@awk 'BEGIN {FS = ":.*?## "} \
	  /^##@ / {s = substr($$0, 5); if (!(s in seen)) {seen[s] = 1; order[++n] = s}; next} \
	  /^[a-zA-Z0-9_-]+:.*## / {t[s] = t[s] sprintf("  \033[36m%-22s\033[0m %s\n", $$1, $$2)} \
	  END {for (i = 1; i <= n; i++) printf "%s\n%s", order[i], t[order[i]]}' $(MAKEFILE_LIST)

# uv installs the same pins as pip would, in seconds rather than minutes (ADR 0061)
UV_PIN := uv==0.13.9
UV := $(VENV)/bin/uv
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip $(UV_PIN)
	# the plugin's runtime first (pyproject.toml's sqlc-gen-fixup-runtime is this tree's), on a
	# path entry (compat) that mypy and pyright follow
	$(UV) pip install -q --python $(PY) -e ./codegen/runtime --config-settings editable_mode=compat
	$(UV) pip install -q --python $(PY) -e '.[ops,codegen,dev,bench]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install everything (idempotent)

lint: install ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## apply ruff's fixes and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: install ## mypy --strict on lib, codegen, services, tools
	$(VENV)/bin/mypy

# make test's parallel pytest-xdist workers (a file is one worker's unit; docs/testing.md)
TEST_WORKERS ?= 4
##@ Tests (tests/, docs/testing.md)
test: install ## the whole suite against real servers (installs nginx, chromium, npm deps); TEST_WORKERS=N parallel workers (0: none); svc=X: one service's tests, no installs
ifdef svc
	$(VENV)/bin/pytest --svc=$(svc) -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)
else
	@$(PY) -m tools.packages ensure test
	@$(MAKE) --no-print-directory swagger-deps || echo "note: the Swagger UI test needs: make swagger-deps"
	@$(MAKE) --no-print-directory scan-deps || echo "note: the deploy scans need: make scan-deps"
	@$(MAKE) --no-print-directory api-lint-deps || echo "note: the API linters need: make api-lint-deps"
	@$(PY) -m tools.local.local_servers up --tests && trap '$(PY) -m tools.local.local_servers down' EXIT && \
	  $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30 $(PYTEST_ARGS)
endif

test-closed-checkout: install ## a sample of the server-starting tests from a copy under a 0700 directory, 2 CPU burners beside it (make test runs it without them)
	@$(PY) -m tools.packages ensure test
	$(PY) -m tools.checks.closed_checkout

# the PostgreSQL services' integration tests (make test runs a few: tests/integration/test_pgbouncer.py)
PG_INTEGRATION = $(sort $(wildcard $(foreach p,departments users catalog orders chat list access conditional page_cache after_commit constraints revocation token,tests/integration/test_$(p)*.py)))
test-pgbouncer: install ## the PostgreSQL services' integration tests with every app's pool through a PgBouncer in transaction mode (ADR 0037)
	@$(PY) -m tools.local.local_servers up --tests && trap '$(PY) -m tools.local.local_servers down' EXIT && \
	  $(PY) -m tools.local.pgbouncer run -- $(VENV)/bin/pytest $(PG_INTEGRATION) $(PYTEST_ARGS)

test-fast: install ## unit + codegen tests that need no server (about a minute, installs nothing beyond .venv)
	$(VENV)/bin/pytest tests/unit tests/codegen --no-servers $(PYTEST_ARGS)

test-reliability: install ## the full reliability suite (more fuzz cases, 60 s load phases; make test runs a bounded one)
	RELIABILITY_FULL=1 $(VENV)/bin/pytest tests/reliability tests/e2e/test_chat_replicas.py tests/e2e/test_start_before_database.py -p no:randomly $(PYTEST_ARGS)

test-lists: install ## the whole list walk: every list x key x direction x page size 1-3 x filter value, by page and cursor (make test runs a sample)
	LIST_WALK=all $(VENV)/bin/pytest tests/integration/test_list_walk.py -p no:randomly $(PYTEST_ARGS)

test-unit: install ## unit tests only (no servers)
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

##@ Drills (tools/drills/, tests/reliability/)
release-drill: install ## 2 replicas of every HTTP service behind nginx, whole stories under load, every replica replaced in turn + an online migration: failures, p50/p99, invariants (make test runs a bounded one)
	RELEASE_DRILL_FULL=1 $(VENV)/bin/pytest tests/reliability/test_release_drill.py -s -p no:randomly $(PYTEST_ARGS)

revocation-loss: install ## Redis killed, flushed or behind right after revocations, every case (make test runs three): the old token's window per case (ADR 0028)
	REVOCATION_LOSS_FULL=1 $(VENV)/bin/pytest tests/integration/test_revocation_loss.py -s -p no:randomly $(PYTEST_ARGS)

rotation-drill: install ## 2 replicas of every HTTP service behind nginx verifying through the JWK Set, stories and signed-in sessions under load, every secret rotated in turn (signing key, picture-URL key, ENCRYPTION_KEY; users rolled per step): 0 refused, 0 logouts (make test runs a bounded one)
	ROTATION_DRILL_FULL=1 $(VENV)/bin/pytest tests/reliability/test_rotation_drill.py -s -p no:randomly -o timeout=900 $(PYTEST_ARGS)

restore-drill: install ## story load through nginx onto archived servers, T taken mid-run, every database restored to T: acknowledged writes, invariants, the outbox's exactly-once award, an erasure after T applied again on the restored copies, RPO/RTO (make test runs a bounded one)
	@$(PY) -m tools.packages ensure backup
	RESTORE_DRILL_FULL=1 $(VENV)/bin/pytest tests/reliability/test_restore_drill.py -s -p no:randomly $(PYTEST_ARGS)

failover-drill: install ## the release drill's story load through NGINX (2 replicas of every HTTP service) on the HA tier (3 Patroni members, strict sync mode, failsafe; Redis + 3 Sentinels; points' MariaDB + a GTID replica) while the PostgreSQL primary's postmaster is killed, a whole member killed, the primary frozen past its TTL, the primary cut off from the network, etcd at 1 of 3, both standbys lost, the Redis master, then points' MariaDB primary killed and frozen and its replica killed: recovery seconds, failed requests by kind, p50/p99, the invariants, the PostgresPrimaryChanged alert (rounds=N: N times in a row; make test runs the postmaster fault and a freeze)
	@$(PY) -m tools.packages ensure ha
	$(PY) -m tests.reliability.failover_stories $(if $(rounds),--rounds $(rounds))

failover-writers: install ## the postmaster, member, quorum, MariaDB (the primary killed, and frozen then woken; the replica killed) and Redis faults under one direct writer per fault (through HAProxy, or --route multihost): RPO and recovery at the database itself (make test runs the MariaDB faults)
	@$(PY) -m tools.packages ensure ha
	$(PY) -m tools.drills.failover_drill

##@ Checks of the suite (tools/checks/)
upgrade-check: install ## the upgrade drill: newest runtime deps (pins dropped) in .venv-upgrade/, then test-fast + integration tests; downloads
	@$(PY) -m tools.packages ensure test
	$(PY) -m tools.checks.upgrade_check

mutate: install ## mutation testing (mutmut) of [tool.mutmut]'s modules; per-module kill rates (docs/mutation.md); only=PATH: one module
	$(PY) -m tools.checks.mutation run $(if $(only),--only $(only))

mutate-sample: install ## the bounded CI sample: a fixed-seed few mutants per module, each must be killed
	$(PY) -m tools.checks.mutation sample

DATABASE_NAMES = $(PY) -c 'from lib import registry; print("|".join(s.database for s in registry.MICROSERVICES))'
SERVICE_NAMES = $(PY) -c 'from lib import registry; print("|".join(s.name for s in registry.MICROSERVICES))'
REST_NAMES = $(PY) -c 'from lib import registry; print("|".join(s.name for s in registry.gateway_services()))'

##@ Migrations and demo data (tools/migrations/, tools/local/seed.py)
check-db:
	@test -n "$(db)" || { echo "usage: make $(MAKECMDGOALS) db=<$$($(DATABASE_NAMES))>"; exit 2; }

migrate-up: install check-db ## apply pending migrations: db=X
	$(PY) -m tools.migrations.migrate up $(db)

migrate-down: install check-db ## roll back one migration: db=X [steps=N | all=1]
	$(PY) -m tools.migrations.migrate down $(db) $(if $(all),--all,--steps $(or $(steps),1))

migrate-status: install check-db ## applied / pending migrations: db=X
	$(PY) -m tools.migrations.migrate status $(db)

migrate-new: install check-db ## new migration pair from the online-safe template: db=X name=Y [index=1]
	$(PY) -m tools.migrations.migrate new $(db) --name "$(name)" $(if $(index),--index)

migrate-lint: install ## every migration online-safe: squawk (.squawk.toml), MariaDB ALTERs, no drop of what sql/ reads
	$(PY) -m tools.migrations.migrate_lint

migrate-compat: install ## the previous release's API tests against the schema after the new migrations (base=REV)
	$(PY) -m tools.migrations.migrate_compat $(if $(base),--base $(base))

seed: install ## migrate every db and load the demo data (idempotent)
	$(PY) -m tools.local.seed --local-dev

##@ Code generation (codegen/, tools/sqlc*.py, tools/proto.py)
sqlc: install ## generate typed repositories from sql/<db>/ (db=X, default all)
	$(PY) -m tools.sqlc generate $(db)

sqlc-check: install ## fail when generated code or a types lock is stale (db=X, default all)
	$(PY) -m tools.sqlc check $(db)

sqlc-types: install ## ask a real server for every query's types -> sql/<db>/types.lock.json
	$(PY) -m tools.sqlc types $(db)

sqlc-vet: install ## PREPARE every query on a real server and compare with the generated types
	$(PY) -m tools.sqlc vet $(db)

sqlc-e2e: install ## sqlc's PostgreSQL end-to-end testdata through the types step (src=<sqlc checkout>; minutes)
	@test -n "$(src)" || { echo "usage: make sqlc-e2e src=<a checkout of sqlc-dev/sqlc>"; exit 2; }
	$(PY) -m tools.sqlc_e2e $(src)/internal/endtoend/testdata

codegen-golden: install ## regenerate the codegen test schemas' golden files (review the diff)
	$(PY) -m tools.sqlc types tests/codegen/pg tests/codegen/psycopg tests/codegen/psycopg_sync tests/codegen/pydantic tests/codegen/attrs tests/codegen/mysql tests/codegen/patch_pg
	$(PY) -m tools.sqlc generate tests/codegen/pg tests/codegen/psycopg tests/codegen/psycopg_sync tests/codegen/pydantic tests/codegen/attrs tests/codegen/mysql tests/codegen/patch_pg tests/codegen/sqlite tests/codegen/aiosqlite

proto: install ## generate betterproto2 messages from proto/ into lib/pb
	$(PY) -m tools.proto gen

proto-check: install ## fail when lib/pb is stale against proto/ (CI)
	$(PY) -m tools.proto check

# POOLER=pgbouncer make run: the services' pools through a PgBouncer of the run's own at
# PGBOUNCER_ADDR, in transaction mode (tools/local/pgbouncer.py, ADR 0037)
PGBOUNCER_LISTEN = $(or $(PGBOUNCER_ADDR),127.0.0.1:6432)
PGBOUNCER_UP = $(if $(filter pgbouncer,$(POOLER)),$(PY) -m tools.local.pgbouncer up --listen $(PGBOUNCER_LISTEN) &&)
PGBOUNCER_DOWN = $(if $(filter pgbouncer,$(POOLER)),$(PY) -m tools.local.pgbouncer down --listen $(PGBOUNCER_LISTEN);)
# make run backups=1: the services' <DB>_DATABASE_URL point at the archived servers
ARCHIVED = $(if $(backups),set -a && . var/db/backups.env && set +a &&)
##@ Running locally (tools/local/, the HA tier: tools/ha/)
run: install ## migrate + seed, then every service of the Procfile (Ctrl-C stops all); replicas=N: N of every HTTP service; backups=1: on the archived servers of make backup-servers; ha=1: on the HA data tier, its WAL archived (tools/ha/run_ha.py; backups=1 not needed)
	@$(PY) -m tools.keys --dir var/keys --missing >/dev/null
	$(if $(filter 1,$(ha)),,$(if $(backups),@$(MAKE) --no-print-directory backup-servers))
	$(if $(replicas),$(PY) -m tools.deploy.procfile write --replicas $(replicas) --out var/Procfile)
	@$(PY) -m tools.packages ensure run
	@$(MAKE) --no-print-directory swag-config || echo "note: /docs/ is not served (above: why); the API is"
ifeq ($(ha),1)
	@$(PY) -m tools.packages ensure ha && $(PY) -m tools.packages ensure backup
	@JWT_PUBLIC_KEY_FILE=var/keys/jwt_public.pem JWT_PRIVATE_KEY_FILE=var/keys/jwt_private.pem \
	  ENCRYPTION_KEY_FILE=var/keys/encryption.key \
	  $(PY) -m tools.ha.run_ha --procfile $(if $(replicas),var/Procfile,Procfile)
else
	@# nothing listening at a configured database or Redis address: ours, stopped again on exit
	@$(ARCHIVED) $(PY) -m tools.local.local_servers up && \
	  trap '$(PGBOUNCER_DOWN) $(PY) -m tools.local.local_servers down' EXIT && $(PGBOUNCER_UP) \
	  { $(PY) -m tools.deploy.connection_budget $(if $(replicas),--replicas $(replicas)) || \
	    echo "note: under full load the pools above may meet 'too many clients' (503s)"; } && \
	  $(PY) -m tools.local.seed --local-dev && \
	  USERS_JWT_KEYS_DIR=var/keys/jwt JWKS_URL=http://127.0.0.1:8102/.well-known/jwks.json \
	  ENCRYPTION_KEY_FILE=var/keys/encryption.key \
	  $(VENV)/bin/honcho start -d . -f $(if $(replicas),var/Procfile,Procfile)
endif

dev: install ## one service with hot reload: svc=X
	@test -n "$(svc)" || { echo "usage: make dev svc=<$$($(SERVICE_NAMES))>"; exit 2; }
	$(VENV)/bin/watchfiles --filter python --target-type command '$(PY) -m services.$(svc)' lib services/$(svc)

##@ Backups and restores (tools/backups/)
backup-servers: install ## a PostgreSQL cluster (WAL archived by pgBackRest) and a MariaDB (binary log on) of the run's own under var/db/, every database migrated (docs/operations.md "Backups")
	@$(PY) -m tools.packages ensure backup
	$(PY) -m tools.backups.backup_servers up

backup: install ## a full (first) or differential pgBackRest backup of every PostgreSQL database + a mariadb-backup of points, binary log archived (type=full|diff)
	$(PY) -m tools.backups.backup $(if $(type),--type $(type))

restore: install check-db ## restore db=X to time=T (ISO 8601) into a new server under var/restore/; prints its DSN
	@test -n "$(time)" || { echo "usage: make restore db=X time=2026-11-25T14:05:00Z"; exit 2; }
	$(PY) -m tools.backups.restore run $(db) "$(time)"

##@ Benchmarks (bench/)
bench: install ## every benchmark (side by side; needs wrk, nginx): bench/results/latest.json + docs/benchmarks.md and the README headline
	$(PY) -m bench.run $(if $(only),--only $(only))

bench-growth-10m: install ## the users list as the table grows to 10^7 users (tens of minutes, GBs of disk: not in `make bench`)
	$(PY) -m bench.growth --sizes 1000,1000000,10000000 --rounds 3

##@ API documents (tools/swag*.py, tools/openapi_examples.py)
swag-gen: install ## write docs/openapi/<svc>.json without a server (svc=X, default all), with the examples of the executed pages (docs/examples.md, services/<svc>/examples.md)
	$(PY) -m tools.openapi_examples gen
	$(PY) -m tools.swag gen $(svc)

swag-check: install ## fail when a committed generated file is stale: the OpenAPI documents and their examples, nginx/compose, nginx/k8s, the Procfile, docs/architecture.md's generated tables, the README's mutation scores
	$(PY) -m tools.openapi_examples check
	$(PY) -m tools.swag check
	$(PY) -m tools.deploy.nginx_copies check
	$(PY) -m tools.deploy.procfile check
	$(PY) -m tools.deploy.servicetable check
	$(PY) -m tools.checks.mutation_scores check

SWAGGER_DEPS := tools/swagger/node_modules/.package-lock.json
$(SWAGGER_DEPS): tools/swagger/package-lock.json
	cd tools/swagger && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund

swagger-deps: $(SWAGGER_DEPS) ## npm ci in tools/swagger: swagger-ui-dist (/docs/), playwright-core (tests)

swag-config: install $(SWAGGER_DEPS) ## Swagger UI for /docs/ (its list: docs/openapi/swagger-ui/swagger-config.json)
	$(PY) -m tools.swag_config

APILINT_DEPS := tools/apilint/node_modules/.package-lock.json
$(APILINT_DEPS): tools/apilint/package-lock.json
	npm ci --prefix tools/apilint --ignore-scripts --no-audit --no-fund

api-lint-deps: $(APILINT_DEPS) ## npm ci in tools/apilint: Spectral, Redocly, openapi-typescript, tsc (pinned)

api-lint: install api-lint-deps ## Spectral (spectral:oas + ours) and Redocly (recommended) on docs/openapi/*.json: 0 errors, 0 warnings
	$(PY) -m tools.checks.api_lint

##@ Deploy files (tools/deploy/)
procfile: install ## render the Procfile from lib/registry.py
	$(PY) -m tools.deploy.procfile

nginx-conf: install ## render nginx/ into var/nginx and check it with nginx -t
	$(PY) -m tools.deploy.nginx test

nginx-compose: install ## regenerate nginx/compose/ (static copy for Docker Compose), nginx/k8s/ (the account pages pod's) and both Swagger UIs' list of docs/openapi/*.json
	$(PY) -m tools.deploy.nginx_copies

SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed-stamp
DCLINT_DEPS := tools/dclint/node_modules/.package-lock.json
$(SCAN_STAMP): pyproject.toml | $(STAMP)
	test -x $(SCAN_VENV)/bin/python || python3 -m venv $(SCAN_VENV)
	$(PY) -m tools.deploy.deploy_scan requirements > $(SCAN_VENV)/requirements.txt
	$(UV) pip install -q --python $(SCAN_VENV)/bin/python -r $(SCAN_VENV)/requirements.txt
	touch $(SCAN_STAMP)
$(DCLINT_DEPS): tools/dclint/package-lock.json
	npm ci --prefix tools/dclint --ignore-scripts --no-audit --no-fund
GATEWAYLINT_DEPS := tools/gatewaylint/node_modules/.package-lock.json
$(GATEWAYLINT_DEPS): tools/gatewaylint/package-lock.json
	npm ci --prefix tools/gatewaylint --ignore-scripts --no-audit --no-fund

scan-deps: $(SCAN_STAMP) $(DCLINT_DEPS) $(GATEWAYLINT_DEPS) ## checkov in .venv-scan (pyproject's scan extra), dclint in tools/dclint, the Gateway API schemas in tools/gatewaylint (npm ci)

deploy-lint: install scan-deps ## checkov on the rendered k8s overlays, zizmor on the workflows, dclint on Compose, the Gateway API objects against their schemas, prod's receivers: 0 findings (tools/deploy/deploy_scan.py)
	$(PY) -m tools.deploy.deploy_scan

deploy-gen: install ## regenerate docs/architecture.md's lib/ and service tables, the README's mutation scores (deploy/k8s/ is its own source)
	$(PY) -m tools.deploy.servicetable
	$(PY) -m tools.checks.mutation_scores

##@ Keys and secrets
keys: install ## write development keys (Ed25519 JWT pair, the signing-key directory var/keys/jwt, ENCRYPTION_KEY) to var/keys (force=1 to replace)
	$(PY) -m tools.keys --dir var/keys $(if $(force),--force)

rotate: install ## one step of rotating a secret, each on one keyring format (ADR 0046; docs/operations.md "Rotating a secret"): secret=jwt|storage|encryption step=status|stage|promote|reencrypt|drop|migrate
	$(PY) -m tools.secrets.rotate $(secret) $(or $(step),status)

##@ A new service (tools/new_service.py, tools/scaffold/)
new-service: install ## a working service from lib/registry.py: name=X db=postgresql|mysql [grpc=1] (tools/new_service.py)
	@test -n "$(name)" || { echo "usage: make new-service name=<name> db=<postgresql|mysql> [grpc=1]"; exit 2; }
	$(PY) -m tools.new_service new "$(name)" --db "$(or $(db),postgresql)" $(if $(grpc),--grpc)

check-service: install ## a REST service and NGINX on free ports: its /health and one list through the gateway (svc=X)
	@test -n "$(svc)" || { echo "usage: make check-service svc=<$$($(REST_NAMES))>"; exit 2; }
	$(PY) -m tools.check_service "$(svc)"

remove-service: install ## undo make new-service: name=X (refuses a service others use, naming each use; never drops its database)
	@test -n "$(name)" || { echo "usage: make remove-service name=<name>"; exit 2; }
	$(PY) -m tools.new_service remove "$(name)"

##@ Docker Compose (docker-compose.yml)
up: install ## the whole stack in Docker Compose (needs Docker and a .env with the passwords; the keys: var/keys, written when missing)
	$(PY) -m tools.keys --dir var/keys --missing
	docker build -t fixup:local .
	docker compose up -d --wait

down: ## stop the Compose stack
	docker compose down

logs: ## follow the Compose stack's logs
	docker compose logs -f --tail=100
