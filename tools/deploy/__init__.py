"""The deploy files generated from lib/registry.py and the linters of all of them: NGINX
(a local run's, nginx/compose/, nginx/k8s/), a local run's Prometheus, Alertmanager, the
Procfile, the SLO rules, docs/architecture.md's tables; the pinned images and their
advisories; the connection budget; the scans of `make deploy-lint` (checkov, the Gateway
API schemas and CEL rules: k8s_cel.py). docker-compose.yml, .env.example, the Grafana
dashboards, the Kibana objects and the Kubernetes files (deploy/k8s/) are checked-in
files, the source themselves (ADR 0048's update).

make targets: deploy-gen, deploy-lint, scan-deps, nginx-conf, nginx-compose, procfile, up,
down, logs.
"""
