"""lib/http/body.parse_json on text orjson refuses: a lone surrogate escape is well-formed
JSON that no UTF-8 string can hold, so it is a 400 naming each field and what was parsed
("body", "frame"); anything else orjson refuses is "not valid JSON"."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from lib.errors import BadRequest, FieldError, ValidationFailed
from lib.http.body import parse_json
from lib.http.fields import UNSTORABLE_MESSAGE


class Named(BaseModel):
    name: str


@pytest.mark.parametrize("what", ["body", "frame"])
@pytest.mark.parametrize(
    "raw", [b'{"name": "\\ud800"}', '{"name": "\\ud800"}'], ids=["bytes", "str"]
)
def test_a_lone_surrogate_is_invalid_naming_the_field(raw: bytes | str, what: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_json(raw, Named, what=what)
    assert caught.value.detail == f"the {what} is invalid"
    assert caught.value.errors == [FieldError("name", UNSTORABLE_MESSAGE)]


@pytest.mark.parametrize("what", ["body", "frame"])
@pytest.mark.parametrize(
    "raw", [b'{"name": NaN}', b'{"name": "\\ud800",}', b"[" * 2000 + b"]" * 2000, b"\xff"],
    ids=["nan", "trailing-comma", "deep", "not-utf8"],
)  # fmt: skip
def test_other_refused_text_is_not_valid_json(raw: bytes, what: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_json(raw, Named, what=what)
    assert caught.value.detail == f"the {what} is not valid JSON"
    assert caught.value.errors == []


@pytest.mark.parametrize("what", ["body", "frame"])
@pytest.mark.parametrize(
    "raw", [b'{"name": "a\\u0000b"}', '{"name": "a\\u0000b"}'], ids=["bytes", "str"]
)
def test_an_escaped_nul_is_invalid_naming_the_field(raw: bytes | str, what: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_json(raw, Named, what=what)
    assert caught.value.detail == f"the {what} is invalid"
    assert caught.value.errors == [FieldError("name", UNSTORABLE_MESSAGE)]


@pytest.mark.parametrize(
    "raw", [b'{"name": "caf\\u00e9"}', '{"name": "caf\\u00e9"}'], ids=["bytes", "str"]
)
def test_other_escapes_are_text_like_any_other(raw: bytes | str) -> None:
    assert parse_json(raw, Named) == Named(name="café")


class Counted(BaseModel):
    n: int


@pytest.mark.parametrize("raw", [b'{"n": "5"}', b'{"n": true}', b'{"n": 5.0}'])
def test_the_model_is_validated_strictly(raw: bytes) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_json(raw, Counted)
    assert [error.field for error in caught.value.errors] == ["n"]
    assert parse_json(b'{"n": 5}', Counted) == Counted(n=5)
