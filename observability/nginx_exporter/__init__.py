"""NGINX access log -> Prometheus metrics: `python -m observability.nginx_exporter`.

Modules: `parse` (one access-log line -> Entry, JSON or combined text), `routes` (the
raw URI -> a bounded route template), `tail` (follow a file across rename and truncate),
`stub_status` (nginx's connection counters), `metrics` (the Prometheus series),
`app` (the HTTP server and the tail loop). README.md beside this file documents them.
"""
