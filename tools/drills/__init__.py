"""The failover drills at the database: one writer per fault (drill_writers), the faults
(ha_faults), PostgreSQL's, points' MariaDB's and Redis's failovers counted for RPO and
recovery.

make targets: failover-writers (python -m tools.drills.failover_drill); failover-drill runs
the story load of tests/reliability on the same faults.
"""
