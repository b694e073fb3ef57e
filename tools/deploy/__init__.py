"""The deploy files, generated from lib/registry.py and checked by linters: Docker
Compose, Kubernetes (base, Gateway, network policies, the backup CronJob), NGINX,
Prometheus, Alertmanager, Grafana, Kibana, the Procfile, .env.example, docs/architecture.md's
tables; the pinned images and their advisories; the connection budget.

make targets: deploy-gen, deploy-lint, scan-deps, nginx-conf, nginx-compose, procfile, up,
down, logs.
"""
