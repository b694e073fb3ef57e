"""The local servers and ports a developer needs: PostgreSQL, MariaDB and Redis
started as plain processes and stopped again (processes.py), free port lanes, file locks,
server homes a 0700 checkout can use, the databases of the registry, a service process, a
PgBouncer, the demo data.

make targets: run, dev, seed, check-db, test-pgbouncer (python -m tools.local.local_servers,
python -m tools.local.seed, python -m tools.local.pgbouncer).
"""
