"""Points for a page of users: ONE batched call, degraded (not failed) when points is down."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from lib.logging import get_logger

log = get_logger("users.points")


class PointsLookup(Protocol):
    async def get_user_list_points(self, user_ids: list[str]) -> dict[str, int]: ...

    async def get_points_version(self) -> int:
        """A number that grows whenever any user's points change (GetPointsVersion)."""
        ...


POINTS: web.AppKey[PointsLookup | None] = web.AppKey("points")
# set when this request already found points down (the list's stamp, list_stamp.py): its
# page is degraded at once, without waiting a second deadline
POINTS_DOWN: web.RequestKey[bool] = web.RequestKey("points_down")


def degraded(exc: Exception) -> None:
    log.warning("points_degraded", error=type(exc).__name__, detail=str(exc)[:200])


async def points_for(lookup: PointsLookup | None, user_ids: list[str]) -> dict[str, int] | None:
    """The points of these users, or None when the points service cannot answer in time
    (breaker open, deadline, unavailable): the list is still served, marked degraded."""
    if lookup is None:
        return None
    if not user_ids:
        return {}
    try:
        return await lookup.get_user_list_points(user_ids)
    except Exception as exc:  # any failure of the dependency degrades, never fails the list
        degraded(exc)
        return None
