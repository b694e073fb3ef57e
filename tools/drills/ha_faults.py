"""The faults the drills inject into the HA tier, and how each one heals: each takes the
tier's directory and layout and returns an `Injected`, whose heal a drill runs beside its
load (`Healing`): tools/drills/failover_drill.py under one direct writer,
tests/reliability/failover_stories.py under the story load.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.ha import ha_network, ha_tier
from tools.ha.ha_postgres import (
    MEMBERS,
    TTL,
    PgLayout,
    cluster_state,
    member_status,
    postmaster_pid,
    primary_member,
    sync_standby,
)
from tools.local.local_servers import StartError, wait_until
from tools.local.processes import session_groups, signal_groups, stop_pid

# the first write after a fault: the leader key's TTL, an election, HAProxy's checks
RECOVERY_LIMIT = 3 * TTL + 15
FREEZE = TTL + 10  # a frozen primary stays paused past its leader key's TTL
PARTITION = 30.0  # seconds the primary is cut off
QUORUM_LOSS = 20.0  # seconds etcd runs on one member of three
STANDBYS_LOST = 15.0  # seconds the primary has no standby at all
# a fault's whole course: its planned length, then the recovery of what it stopped
FAULT_LIMIT = max(FREEZE, PARTITION, QUORUM_LOSS, STANDBYS_LOST) + RECOVERY_LIMIT


def settled(layout: PgLayout) -> bool:
    """A primary whose own PostgreSQL streams to every other member, one of them
    synchronous (its pg_stat_replication: the DCS's word can be a moment old), and named
    so in the DCS."""
    k = primary_member(layout)
    if k is None:
        return False
    replication = member_status(layout, k).get("replication")
    standbys = replication if isinstance(replication, list) else []
    streaming = [r for r in standbys if isinstance(r, dict) and r.get("state") == "streaming"]
    if len(streaming) != MEMBERS - 1 or not any(r.get("sync_state") == "sync" for r in streaming):
        return False
    # until Patroni records it (its /sync key), strict mode has no candidate to promote
    return sync_standby(layout) is not None


@dataclass(frozen=True)
class Injected:
    """A fault as injected: what was done, and `heal()`, which blocks until it is over."""

    what: str
    heal: Callable[[], None]


def nothing_to_heal() -> None:
    return None


def _healed_after(seconds: float, what: str, then: Callable[[], None]) -> Injected:
    """`what`, whose heal waits out the fault's planned length (`seconds` from now), then
    runs `then`."""
    at = time.monotonic() + seconds

    def heal() -> None:
        time.sleep(max(0.0, at - time.monotonic()))
        then()

    return Injected(what, heal)


def _groups(root: Path) -> list[int]:
    """The tier's process groups as its ledger has them now."""
    return ha_tier.read_layout(root.parent)[1]


def _member_groups(root: Path, k: int) -> tuple[int, ...]:
    """Member k's process groups: its tini's session's (tini's, Patroni's), and its
    postmaster's when one runs (Patroni starts it in a session of its own)."""
    patroni = tuple(session_groups(_groups(root)[MEMBERS + k]))
    try:
        return *patroni, os.getpgid(postmaster_pid(root, k))
    except (OSError, ValueError):  # no postmaster.pid, or a stale one: none running
        return patroni


def _kill_member(root: Path, k: int) -> None:
    """Member k's Patroni and PostgreSQL SIGKILLed, the postmaster reaped when it is ours."""
    signal_groups(_member_groups(root, k), signal.SIGKILL)
    with contextlib.suppress(OSError, ValueError):  # no postmaster.pid: none running
        stop_pid(postmaster_pid(root, k), signal.SIGKILL)


def _paused(groups: tuple[int, ...], seconds: float, what: str) -> Injected:
    """`groups` stopped (SIGSTOP) now, resumed by the heal once `seconds` have passed."""
    signal_groups(groups, signal.SIGSTOP)
    return _healed_after(seconds, what, lambda: signal_groups(groups, signal.SIGCONT))


def _the_primary(layout: PgLayout) -> int:
    k = primary_member(layout)
    if k is None:
        raise StartError(f"no primary to inject a fault into: {cluster_state(layout)}")
    return k


def kill_postmaster(root: Path, layout: PgLayout) -> Injected:
    k = _the_primary(layout)
    # reaped when ours: under the test suite's subreaper an orphaned postmaster is, and
    # unreaped its zombie would look alive to Patroni
    stop_pid(postmaster_pid(root, k), signal.SIGKILL)
    return Injected(f"pg{k}'s postmaster SIGKILLed", nothing_to_heal)


def kill_member(root: Path, layout: PgLayout) -> Injected:
    k = _the_primary(layout)
    _kill_member(root, k)

    def heal() -> None:  # started before another is primary, it would keep its leader key
        wait_until(lambda: primary_member(layout) not in (None, k), "a new primary", FAULT_LIMIT)
        ha_tier.restart_members(root.parent)

    return Injected(f"member pg{k} killed (Patroni and PostgreSQL)", heal)


def freeze_member(root: Path, layout: PgLayout) -> Injected:
    """The whole primary member paused past its leader key's TTL (a paused VM, a stalled
    disk), then resumed: it must find the standby promoted and follow it, never take the
    leader back nor acknowledge a write of its own on waking."""
    k = _the_primary(layout)
    groups = _member_groups(root, k)
    if len(groups) < 3:  # tini's, Patroni's and the postmaster's: freeze all or none
        raise StartError(f"pg{k}: no running postmaster to freeze beside its Patroni ({groups})")
    what = f"member pg{k} frozen (SIGSTOP) for {FREEZE:.0f} s, then resumed"
    return _paused(groups, FREEZE, what)


def partition_member(root: Path, layout: PgLayout) -> Injected:
    """The primary member cut off from everything for PARTITION seconds, then healed: its
    Patroni demotes it, and the standby is promoted once the leader key expires."""
    if layout.net is None:
        raise StartError("a partition needs the members on hosts of their own (--isolated)")
    net = layout.net
    k = _the_primary(layout)
    ha_network.cut(net, k)
    what = f"member pg{k} cut off from the network for {PARTITION:.0f} s, healed"
    return _healed_after(PARTITION, what, lambda: ha_network.heal(net, k))


def lose_quorum(root: Path, layout: PgLayout) -> Injected:
    """etcd at 1 of 3 members (two frozen): no quorum, so no leader key can be renewed;
    in failsafe mode the primary, still reaching every member, keeps writing."""
    lost = tuple(_groups(root)[1:MEMBERS])  # etcd's groups come first: all but one
    return _paused(lost, QUORUM_LOSS, f"etcd at 1 of 3 members for {QUORUM_LOSS:.0f} s")


def lose_standbys(root: Path, layout: PgLayout) -> Injected:
    """Both standbys killed (Patroni and PostgreSQL): in strict synchronous mode the
    primary acknowledges nothing until one is back; started again after STANDBYS_LOST."""
    k = _the_primary(layout)
    for other in (m for m in range(MEMBERS) if m != k):
        _kill_member(root, other)
    what = f"both standbys of pg{k} killed for {STANDBYS_LOST:.0f} s"
    return _healed_after(STANDBYS_LOST, what, lambda: ha_tier.restart_members(root.parent))


FAULTS = {
    "postmaster": kill_postmaster,
    "member": kill_member,
    "freeze": freeze_member,
    "partition": partition_member,
    "quorum": lose_quorum,
    "standbys": lose_standbys,
}


class Healing:
    """An injected fault's heal() in a thread beside the load; `join()` raises what it raised."""

    def __init__(self, injected: Injected) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(injected.heal,), daemon=True)
        self.thread.start()

    def _run(self, heal: Callable[[], None]) -> None:
        try:
            heal()
        except BaseException as exc:  # handed to join()'s caller
            self.error = exc

    def join(self, what: str) -> None:
        self.thread.join(FAULT_LIMIT)
        if self.thread.is_alive():
            raise StartError(f"{what} not over within {FAULT_LIMIT:.0f} s")
        if self.error is not None:
            raise StartError(f"healing {what}: {self.error}") from self.error


def wait_settled(layout: PgLayout) -> None:
    """Every member running with a synchronous standby named (Patroni promotes only that
    one), before a fault and after it."""
    wait_until(
        lambda: settled(layout), "every member running with a sync standby", 2 * RECOVERY_LIMIT
    )
