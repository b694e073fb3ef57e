"""Where a setting comes from beside pydantic-settings' own sources: `<NAME>_FILE`.

pydantic-settings reads the environment, `.env` and SECRETS_DIR (lib/config.py's
load_settings orders them); a setting may also come from the file a variable names
(Compose and Kubernetes secrets; ADR 0036), and a tool that reads one value outside the
settings follows the same rules (`env_or_file`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource


class FileVariables(PydanticBaseSettingsSource):
    """`<NAME>_FILE`: a setting read from the file a variable names (the one convention
    pydantic-settings has no source for; its SecretsSettingsSource reads SECRETS_DIR),
    where no variable gives the value itself; `prefixes` in order of precedence."""

    def __init__(
        self, settings_cls: type[BaseSettings], env: dict[str, str], prefixes: tuple[str, ...]
    ) -> None:
        super().__init__(settings_cls)
        self.env, self.prefixes = env, prefixes
        self.errors: dict[str, str] = {}  # field -> `VAR_FILE: cannot read ...`
        self.origin: dict[str, str] = {}  # field -> the variable that named its file

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        names = [f"{prefix}{field_name}".upper() for prefix in self.prefixes]
        if f"{field_name}_file" in self.settings_cls.model_fields or any(
            name in self.env for name in names
        ):
            return None, field_name, False  # a field of its own takes `<NAME>_FILE`
        for var in (f"{name}_FILE" for name in names if self.env.get(f"{name}_FILE")):
            try:
                return Path(self.env[var]).read_text().rstrip("\r\n"), var, False
            except OSError as exc:
                self.errors[field_name] = f"{var}: cannot read {self.env[var]}: {exc.strerror}"
                return None, field_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, var, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[field_name], self.origin[field_name] = value, var
        return values


def environment(env_file: Path) -> dict[str, str]:
    """The process environment over `env_file`'s variables."""
    values = dotenv_values(env_file) if env_file.is_file() else {}
    return {**{k: v for k, v in values.items() if v is not None}, **os.environ}


def env_or_file(name: str) -> str:
    """What a tool outside the settings reads the same way: `NAME`, else the file of
    `NAME_FILE`, else `SECRETS_DIR/NAME`; "" when none is set (a missing file raises)."""
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE") or ""
    directory = os.environ.get("SECRETS_DIR", "")
    if not path and directory and (Path(directory) / name).is_file():
        path = str(Path(directory) / name)
    return Path(path).read_text().rstrip("\r\n") if path else ""


def variable(prefix: str, field: str) -> str:
    """The variable (or file) name that supplies `field` under `prefix`."""
    return f"{prefix}{field.upper()}"
