"""The users service's domain counters (lib.db.facts.Facts): each counts a committed fact
once, labelled by bounded values only; `create_app` starts them at 0."""

from __future__ import annotations

from lib.db.facts import Facts

LOGINS = Facts(
    "users_logins_total",
    "Logins by outcome: ok (a session started), failed (wrong email or password), locked "
    "(refused by the per-email or per-IP login limit, 429).",
    outcome=("ok", "failed", "locked"),
)
REFRESH_REUSE = Facts(
    "users_refresh_token_reuse_total",
    "Used refresh tokens presented again: the session (refresh family) was revoked.",
)
REVOCATIONS = Facts(
    "users_revocations_total",
    "Actions that ended sessions, by reason.",
    reason=(
        "logout",
        "refresh_reuse",
        "password_reset",
        "password_changed",
        "account_deleted",
        "session_ended",
    ),
)
MAILS = Facts(
    "users_mails_total",
    "Outbox mails the relay handed to the mail server (sent) or not (failed: retried later).",
    outcome=("sent", "failed"),
)
ALL = (LOGINS, REFRESH_REUSE, REVOCATIONS, MAILS)
