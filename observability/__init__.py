"""Observability: Prometheus, Grafana and ELK configuration, and the NGINX exporter."""
