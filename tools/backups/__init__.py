"""Backups and restores: pgBackRest (deploy/pgbackrest/) for PostgreSQL and
mariadb-backup for MariaDB, the archived servers they watch, a restore to a point in time,
and the exporter Prometheus scrapes.

make targets: backup-servers, backup, restore, restore-drill.
"""
