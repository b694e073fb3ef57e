"""The deploy files rendered from lib/registry.py and the linters of all of them: NGINX's
templates filled in (a local run's, nginx/compose/, nginx/k8s/: addresses, ports, paths),
a local run's Prometheus, Alertmanager, the Procfile, docs/architecture.md's tables; the
pinned images and their advisories; the connection budget; the scans of `make
deploy-lint` (checkov, the Gateway API schemas and CEL rules: k8s_cel.py).
docker-compose.yml, .env.example, nginx/'s templates with every service's blocks, the
Grafana dashboards, the Kibana objects, the SLO rules and the Kubernetes files
(deploy/k8s/) are checked-in files, the source themselves (ADR 0048's update).

make targets: deploy-gen, deploy-lint, scan-deps, nginx-conf, nginx-compose, procfile, up,
down, logs.
"""
