"""Python names from SQL names."""

from __future__ import annotations

import keyword
import re

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def snake(name: str) -> str:
    words = _WORD.findall(name.replace("-", "_"))
    result = "_".join(w.lower() for w in words) or "value"
    if result[0].isdigit():
        result = "_" + result
    return result + "_" if keyword.iskeyword(result) or result in _RESERVED else result


def pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:].lower() for w in _WORD.findall(name)) or "Value"


def enum_member(value: str) -> str:
    member = re.sub(r"\W+", "_", value).strip("_").upper() or "EMPTY"
    return "_" + member if member[0].isdigit() else member


# names a generated function body uses for itself
_RESERVED = {"conn", "row", "rows", "cur", "args", "sql", "result", "stmt", "record"}
