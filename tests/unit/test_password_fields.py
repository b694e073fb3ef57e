"""Passwords as people type them (ASVS 5.0 V6.2.6-V6.2.9, docs/security.md): the account
pages mask every password field and let a password manager fill it and a paste in; the API
takes a password exactly as received (no trimming, no case change) and up to 72 characters,
and a login checks it the same way."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.users.auth_schemas import LoginIn, ReauthIn, RegisterIn, ResetConfirmIn

PAGES = Path(__file__).resolve().parents[2] / "nginx" / "pages"


class Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.handlers += [name for name in named if name.startswith("on")]
        if tag == "input":
            self.inputs.append(named)


def password_inputs() -> list[tuple[str, dict[str, str | None], list[str]]]:
    found = []
    for page in sorted(PAGES.glob("*.html")):
        parser = Inputs()
        parser.feed(page.read_text())
        for named in parser.inputs:
            if "password" in (named.get("name") or "") or named.get("id") == "confirm":
                found.append((page.name, named, parser.handlers))
    return found


def test_every_password_field_is_masked_and_a_manager_may_fill_it() -> None:
    fields = password_inputs()
    assert fields, "no password field found in nginx/pages"
    for page, named, handlers in fields:
        assert named.get("type") == "password", (page, named)
        assert named.get("autocomplete") in ("new-password", "current-password"), (page, named)
        assert handlers == [], (page, handlers)  # no inline onpaste/oncopy blocking
    scripts = " ".join(p.read_text() for p in (PAGES / "assets").glob("*.js"))
    assert "paste" not in scripts  # nothing listens to refuse a paste


@pytest.mark.parametrize("password", ["  Padded Pass  ", "MiXeD cAsE pass", "ünïcödé påss"])
def test_a_password_is_taken_exactly_as_received(password: str) -> None:
    assert LoginIn(email="a@b.cd", password=password).password == password
    assert ReauthIn(password=password).password == password
    assert ResetConfirmIn(token="t" * 43, new_password=password).new_password == password


def test_passwords_of_64_characters_and_more_are_permitted() -> None:
    for length in (64, 72):
        body = RegisterIn(
            email="a@b.cd",
            password="x" * length,
            first_name="A",
            last_name="B",
            phone_number="+1 555",
            role="CUSTOMER",
        )
        assert len(body.password) == length
    with pytest.raises(ValidationError):
        ResetConfirmIn(token="t" * 43, new_password="short")  # under 8: refused
