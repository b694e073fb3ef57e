"""lib/redact.py: the query string every log writes."""

from __future__ import annotations

import re

import pytest

from lib.config import ConfigError, ServiceSettings, load_settings
from lib.redact import REDACTED, SECRET_PARAMS, nginx_pattern, redact_query, secret_params

NAMES = secret_params()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("limit=1&page=2", "limit=1&page=2"),
        ("token=abc", f"token={REDACTED}"),
        ("a=1&token=abc&b=2", f"a=1&token={REDACTED}&b=2"),
        ("token=a&token=b", f"token={REDACTED}&token={REDACTED}"),
        ("Access_Token=x", f"Access_Token={REDACTED}"),
        ("refresh_token=x&code=y&sig=z&password=p",
         f"refresh_token={REDACTED}&code={REDACTED}&sig={REDACTED}&password={REDACTED}"),
        ("%74oken=x", f"%74oken={REDACTED}"),  # a server decodes the name to `token`
        ("mytoken=x&token_type=Bearer", "mytoken=x&token_type=Bearer"),
        ("token", "token"),  # no value to hide
        ("token=", f"token={REDACTED}"),
        ("expires=1&sig=a%3Db", f"expires=1&sig={REDACTED}"),
    ],
)  # fmt: skip
def test_redact_query(query: str, expected: str) -> None:
    assert redact_query(query, NAMES) == expected


def test_extra_names_add_to_the_built_in_ones() -> None:
    names = secret_params(["api_key", " Session "])
    assert set(SECRET_PARAMS) | {"api_key", "session"} == names
    assert redact_query("session=s&api_key=k", names) == f"session={REDACTED}&api_key={REDACTED}"
    for bad in ("a b", "x|y", "a=b", "(", "x" * 65):
        with pytest.raises(ValueError, match="not a parameter name"):
            secret_params([bad])


def test_a_bad_name_in_the_setting_stops_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_REDACT_PARAMS", "api_key, bad|name")
    with pytest.raises(ConfigError):
        load_settings(ServiceSettings, "departments")
    monkeypatch.setenv("LOG_REDACT_PARAMS", "api_key, session")
    assert load_settings(ServiceSettings, "departments").log_redact_params == ["api_key", "session"]


def test_the_nginx_pattern_matches_exactly_the_names() -> None:
    pattern = re.compile(f"^(?:{nginx_pattern(secret_params(['x.y']))})$", re.IGNORECASE)
    for name in (*SECRET_PARAMS, "TOKEN", "x.y"):
        assert pattern.match(name), name
    for name in ("xay", "tokens", "my_token", ""):
        assert not pattern.match(name), name
