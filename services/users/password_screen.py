"""New passwords screened at registration, change and reset (NIST SP 800-63B-4's
blocklist; ADR 0049): refused when on a list of common and breached passwords, or when they
contain the account's email or one of its names. No composition rules, and login never
screens, so an existing password keeps working until its owner changes it.

The list is zxcvbn's (the `zxcvbn` package, MIT licence, offline): the 30,000 passwords
most frequent in breach corpora, lower case, compared with the candidate folded."""

from __future__ import annotations

from functools import cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from lib.errors import FieldError, ValidationFailed

SHORTEST_PART = 3  # an email part or a name shorter than this is not looked for


@cache
def breached() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def screen(field: str, password: str, email: str, *names: str) -> None:
    """Raise a 400 naming `field` when `password` is refused; -> None when it is taken."""
    folded = password.casefold()
    if folded in breached():
        why = "is one of the 30,000 most common passwords of known breaches"
    elif any(part in folded for part in personal(email, *names)):
        why = "contains the account's email or name"
    else:
        return
    raise ValidationFailed(f"this password {why}", errors=[FieldError(field, f"it {why}")])


def personal(email: str, *names: str) -> set[str]:
    """What a password may not contain: the email, its part before @, each name."""
    parts = {email, email.partition("@")[0], *names}
    return {part.casefold() for part in parts if len(part.strip()) >= SHORTEST_PART}
