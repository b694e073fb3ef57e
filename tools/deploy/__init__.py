"""The deploy files generated from lib/registry.py and checked by linters: Kubernetes
(base, Gateway, network policies, the backup CronJob), NGINX, Prometheus, Alertmanager, the
Procfile, .env.example, docs/architecture.md's tables; the pinned images and their
advisories; the connection budget. docker-compose.yml, the Grafana dashboards and the
Kibana objects are checked-in files, the source themselves (ADR 0048's update).

make targets: deploy-gen, deploy-lint, scan-deps, nginx-conf, nginx-compose, procfile, up,
down, logs.
"""
