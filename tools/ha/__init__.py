"""The HA data tier: etcd + 3 Patroni members behind HAProxy, Redis with 3 Sentinels,
points' MariaDB with a GTID replica and its watcher, started as plain processes from the
checked-in files of deploy/ (patroni, haproxy, redis, mariadb); the tier watched by a real
Prometheus and Alertmanager (data_tier_watch).

make targets: run ha=1 (run_ha); python -m tools.ha.ha_tier up|down|status.
"""
