"""Migrations: yoyo on every database of the registry, the online-safety linters
(squawk, MariaDB ALTERs, no drop of what sql/ reads) and the previous release's tests
against the new schema.

make targets: migrate-up, migrate-down, migrate-status, migrate-new, migrate-lint,
migrate-compat.
"""
