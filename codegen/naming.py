"""Python names from SQL names."""

from __future__ import annotations

import keyword
import re
import unicodedata

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
    member = re.sub(r"\W+", "_", value).strip("_").upper()
    if not member and value:  # '+', '-', '#': the characters' Unicode names
        member = "_".join(unicodedata.name(ch, f"U{ord(ch):04X}") for ch in value)
        member = re.sub(r"\W+", "_", member).upper()
    member = member or "EMPTY"
    return "_" + member if member[0].isdigit() else member


def enum_members(values: list[str]) -> list[str]:
    """Valid, unique member names for the labels, in order ('a b' and 'A_B' -> A_B, A_B_2)."""
    names: list[str] = []
    for value in values:
        base = name = enum_member(value)
        counter = 1
        while name in names:
            counter += 1
            name = f"{base}_{counter}"
        names.append(name)
    return names


# the plugin's own package: `sqlc_gen_fixup` from the wheel, or the name of its source tree
PACKAGE = __name__.rpartition(".")[0]
# what generated code imports: the runtime distribution (sqlc-gen-fixup-runtime), never the
# generator, so production installs the runtime and the driver only
RUNTIME = "sqlc_fixup_runtime"
RUNTIME_MODULE = f"import {RUNTIME} as runtime"  # its helpers, called as runtime.f(...)

# names a generated function body uses for itself
_LOCALS = {"conn", "row", "rows", "cur", "args", "sql", "result", "stmt", "record"}
# names a generated module refers to (its annotations and bodies): a function, parameter or
# field of that name would shadow it (`def list(...)` breaks every `list[...]` annotation)
_BUILTINS = {"list", "dict", "str", "int", "float", "bool", "bytes", "tuple", "frozenset"}
_BUILTINS |= {"isinstance", "max", "sorted"}
_MODULE = {"runtime", "models", "dataclass", "dataclasses", "datetime", "annotations"}
_MODULE |= {"aiomysql", "asyncpg", "psycopg", "msgspec", "codegen", "sqlc_gen_fixup", "typing"}
_MODULE |= {"enum", "sqlc_fixup_runtime", "json_columns"}
_RESERVED = _LOCALS | _BUILTINS | _MODULE


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("sses", "xes", "ches", "shes", "uses")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def model_name(table: str, exact: bool = False) -> str:
    """A table's model class: the table's name singular, or as it is (`emit_exact_table_names`)."""
    return pascal(table if exact else singular(table))
