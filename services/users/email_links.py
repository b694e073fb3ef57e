"""The single-use links of the mails (verification, password reset): why one is refused.

The account pages (nginx/pages/) tell the three cases apart, so each has its own problem
code (docs/api.md). Telling them apart gives nothing to a guesser: "used" and "expired"
are only ever answered to someone who holds a token we issued.
"""

from __future__ import annotations

from lib.errors import BadRequest, Conflict
from services.users.db.auth import LockEmailTokenRow


class LinkInvalid(BadRequest):
    code, title = "LINK_INVALID", "Link not valid"


class LinkExpired(BadRequest):
    code, title = "LINK_EXPIRED", "Link expired"


class LinkUsed(Conflict):
    code, title = "LINK_USED", "Link already used"


def usable_link(token: LockEmailTokenRow | None, what: str) -> LockEmailTokenRow:
    """The locked token row when it may be used now; else the problem that says why not."""
    if token is None:
        raise LinkInvalid(f"this {what} link is not valid")
    if token.used_at is not None:
        raise LinkUsed(f"this {what} link was already used")
    if token.expired:
        raise LinkExpired(f"this {what} link has expired")
    return token
