"""The failover drill's MariaDB faults: a real points process awarding points over gRPC,
through the pair's HAProxy address, while the primary is SIGKILLed (`mariadb`) or frozen
until the address has moved, then woken (`mariadb-freeze`), or the replica is SIGKILLed
(`mariadb-replica`), with no operator step.

The watcher promotes the replica; the old primary, started again (a frozen one once the
watcher, finding commits of it still waiting for an acknowledgement, has SIGKILLed it),
must come back read-only and follow it. A replica lost, the watcher lets the primary's
waiting commits go on alone; the replica, started again, must follow and acknowledge
again. Each award carries an idempotency key of its own (never retried): the acknowledged
ones must be in the primary's ledger exactly once, the balance its sum."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pymysql

from lib.pb.point import AddPointsRequest, PointReply
from tools.drills.drill_writers import CONNECT_TIMEOUT, STATEMENT_TIMEOUT, FaultResult, drive
from tools.drills.ha_faults import Injected
from tools.ha import ha_mariadb, ha_tier
from tools.ha.ha_mariadb import MariaLayout
from tools.ha.ha_mariadb_watch import FAILOVER_BOUND, probe
from tools.local.local_servers import StartError, wait_until
from tools.local.ports import free_ports
from tools.local.processes import alive, signal_groups, stop_pid
from tools.local.service_process import ServiceProcess
from tools.migrations import migrate
from tools.time_scale import scaled

AWARD = "/point.PointServer/AddUserPoints"
DATABASE = "fixup_points"
# the old primary restarted (its crash recovery) and following the new one
REJOIN_LIMIT = scaled(20.0)
# the first award after the loss: the watcher's failover, then points' pool dropping the
# connections HAProxy cut (one failed award each) and connecting anew
AWARD_BACK_LIMIT = FAILOVER_BOUND + STATEMENT_TIMEOUT + CONNECT_TIMEOUT


class AwardUnavailable(Exception):
    """points answered UNAVAILABLE: its database lost or refused (its 503), or no points."""


class AwardTimedOut(Exception):
    """No answer within the award's deadline."""


class AwardFailed(Exception):
    """Any other status."""


FAILURES = {
    grpc.StatusCode.UNAVAILABLE: AwardUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: AwardTimedOut,
}


class AwardWrites:
    """Awards of 1 point to one user through points' gRPC, key `drill:<n>` each."""

    errors: tuple[type[Exception], ...] = (AwardUnavailable, AwardTimedOut, AwardFailed)

    def __init__(self, target: str, user_id: str) -> None:
        self.target, self.user_id = target, user_id
        self.channel: grpc.Channel | None = None
        self.award: Any = None

    def write(self, n: int) -> None:
        if self.channel is None:
            self.channel = grpc.insecure_channel(self.target)
            self.award = self.channel.unary_unary(
                AWARD, request_serializer=bytes, response_deserializer=PointReply.parse
            )
        request = AddPointsRequest(
            user_id=self.user_id, delta=1, reason="failover drill", idempotency_key=f"drill:{n}"
        )
        try:
            self.award(request, timeout=STATEMENT_TIMEOUT)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            raise FAILURES.get(code, AwardFailed)(str(code)) from None

    def reset(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.channel = None


def points_process(var: Path, dsn: str) -> tuple[ServiceProcess, int]:
    """points on `dsn`, healthy; -> it and its gRPC port."""
    http, rpc = free_ports(2)
    env = {
        "POINTS_DATABASE_URL": dsn,
        "POINTS_PORT": str(http),
        "POINTS_GRPC_PORT": str(rpc),
        "WORKERS": "1",
        "REDIS_URL": "",
        "LOG_LEVEL": "INFO",
    }
    service = ServiceProcess(env, var / "points.log", name="points")
    try:
        asyncio.run(service.wait_healthy())
    except BaseException:
        service.stop()
        raise
    return service, rpc


def drill_mariadb(var: Path, fault: str) -> FaultResult:
    """The pair behind its HAProxy and watcher, points on its address; `fault` (one of
    MARIADB_FAULTS) injected."""
    try:
        tier = ha_tier.up(var, free_ports=True, parts=("mariadb",))
        layout = tier.mariadb
        assert layout is not None
        # the schema on the primary itself: a setup that fails on a check answered late
        # under load (HAProxy cuts the address's sessions) is no finding of the drill
        migrate.up("points", f"mysql://root@127.0.0.1:{layout.primary}/{DATABASE}")
        dsn = f"mysql://root@127.0.0.1:{layout.address}/{DATABASE}"
        points, rpc = points_process(var, dsn)
        user_id = str(uuid.uuid4())
        try:
            return drive(
                AwardWrites(f"127.0.0.1:{rpc}", user_id),
                lambda: MARIADB_FAULTS[fault](var, layout),
                lambda: where(var, layout),
                lambda acked: counted(layout.address, user_id),
            )
        finally:
            points.stop()
    finally:
        ha_tier.down(var)


def lose_primary(var: Path, layout: MariaLayout, *, freeze: bool = False) -> Injected:
    """SIGKILL the primary (`freeze`: SIGSTOP it); heal: the address moved, the frozen
    primary woken and either fenced or SIGKILLed by the watcher, the old primary started
    again if it is gone, back as a replica. The primary is the server the address reaches:
    after a first fault on the same tier, the tier's second server."""
    k = 1 if ha_mariadb.serving_port(layout.address) == layout.replica else 0
    group = ha_tier.ledger(var)["mariadb_groups"][k]
    if k:
        layout = replace(layout, primary=layout.replica, replica=layout.primary)
    if freeze:
        signal_groups((group,), signal.SIGSTOP)
    else:
        stop_pid(group, signal.SIGKILL)

    def heal() -> None:
        moved = f"HAProxy's address {layout.address} on {layout.replica} (the watcher's)"
        wait_until(
            lambda: ha_mariadb.serving_port(layout.address) == layout.replica,
            moved,
            FAILOVER_BOUND + STATEMENT_TIMEOUT,
        )
        if freeze:
            signal_groups((group,), signal.SIGCONT)
            woken = f"the woken primary {layout.primary} fenced or SIGKILLed by the watcher"
            wait_until(
                lambda: not alive(group, group=True) or fenced(layout), woken, FAILOVER_BOUND
            )
        ha_tier.restart_mariadb(var)
        back = f"the old primary {layout.primary} read-only, following {layout.replica}"
        wait_until(lambda: fenced(layout), back, REJOIN_LIMIT)

    lost = "frozen (SIGSTOP) until the address moved, then woken" if freeze else "SIGKILLed"
    what = f"the MariaDB primary {lost}; the watcher promoted its replica, no operator step"
    return Injected(what, heal)


def lose_replica(var: Path, layout: MariaLayout) -> Injected:
    """SIGKILL the replica (the server the address does not reach): the primary's commits
    wait for its acknowledgement until the watcher lets them go on alone. Heal: the
    replica started again, following, and the primary acknowledged by it again."""
    k = 0 if ha_mariadb.serving_port(layout.address) == layout.replica else 1
    if k == 0:
        layout = replace(layout, primary=layout.replica, replica=layout.primary)
    stop_pid(ha_tier.ledger(var)["mariadb_groups"][k], signal.SIGKILL)

    def heal() -> None:
        def alone() -> bool:  # the awards' commits released by the watcher
            seen = probe(layout.primary)
            return seen is not None and not seen.acknowledged

        released = f"the primary {layout.primary} going on alone (the watcher's release)"
        wait_until(alone, released, FAILOVER_BOUND)
        ha_tier.restart_mariadb(var)

        def back() -> bool:
            seen = probe(layout.primary)
            return seen is not None and seen.acknowledged and following(layout)

        again = f"the replica {layout.replica} following {layout.primary}, acknowledging"
        wait_until(back, again, REJOIN_LIMIT)

    what = (
        "the MariaDB replica SIGKILLed; the watcher let the primary go on alone, no operator step"
    )
    return Injected(what, heal)


def freeze_primary(var: Path, layout: MariaLayout) -> Injected:
    return lose_primary(var, layout, freeze=True)


MARIADB_FAULTS: dict[str, Callable[[Path, MariaLayout], Injected]] = {
    "mariadb": lose_primary,
    "mariadb-freeze": freeze_primary,
    "mariadb-replica": lose_replica,
}


def where(var: Path, layout: MariaLayout) -> str:
    """What a failed drill prints: the address, each server's replication, the watcher's log."""
    serving = ha_mariadb.serving_port(layout.address) or "no server"
    states = []
    for port in layout.servers:
        try:
            status = ha_mariadb.replica_status(port)
            keys = ("Master_Port", "Slave_IO_Running", "Last_IO_Error", "Last_SQL_Error")
            seen = {k: status.get(k) for k in keys} if status else "no replication"
            states.append(f"127.0.0.1:{port}: {seen}")
        except (pymysql.MySQLError, OSError) as exc:
            states.append(f"127.0.0.1:{port}: unreachable ({exc})")
    watch_log = ha_tier.tier_root(var) / "mariadb" / "watch.log"
    tail = watch_log.read_text().splitlines()[-8:] if watch_log.exists() else ["no log"]
    return (
        f"HAProxy's address 127.0.0.1:{layout.address} reaches {serving}; {'; '.join(states)};"
        f" the watcher's log ends: {' | '.join(tail)}"
    )


def fenced(layout: MariaLayout) -> bool:
    """The old primary (`layout.primary`) follows the new one read-only."""
    return following(replace(layout, primary=layout.replica, replica=layout.primary))


def following(layout: MariaLayout) -> bool:
    """`layout.replica` replicates `layout.primary`, read-only."""
    seen = probe(layout.replica)  # None: still starting
    if seen is None or not seen.receiving(layout.primary):
        return False
    return seen.replica.get("Slave_SQL_Running") == "Yes" and seen.read_only


def counted(address: int, user_id: str) -> dict[int, int]:
    """Rows per award number in the ledger of the primary the address reaches; a balance
    that is not the ledger's sum (an award applied twice beside its row) fails the drill."""
    with ha_mariadb.connect(address, database=DATABASE) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT idempotency_key, count(*), sum(delta) FROM points_ledger"
            " WHERE user_id = %s GROUP BY 1",
            (user_id,),
        )
        rows = cur.fetchall()
        cur.execute("SELECT points FROM user_points WHERE user_id = %s", (user_id,))
        balance = int((cur.fetchone() or (0,))[0])
    total = sum(int(s) for _, _, s in rows)
    if balance != total:
        raise StartError(f"the balance {balance} is not the ledger's sum {total}")
    return {int(str(key).split(":", 1)[1]): int(n) for key, n, _ in rows}
