"""lib.config.load_settings: the service-prefix rule, `.env`, validation, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.config import ConfigError, ServiceSettings, load_settings

FIELDS = {name.upper() for name in ServiceSettings.model_fields}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the machine running the tests leaks in (plain or prefixed)."""
    import os

    for name in list(os.environ):
        upper = name.upper()
        if upper in FIELDS or any(upper.endswith(f"_{field}") for field in FIELDS):
            monkeypatch.delenv(name)


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    return tmp_path / ".env"  # absent unless a test writes it


def load(env_file: Path, service: str = "users") -> ServiceSettings:
    return load_settings(ServiceSettings, service, env_file)


def fails(env_file: Path, capsys: pytest.CaptureFixture[str], service: str = "users") -> str:
    """Load, expect exit code 2, return stderr."""
    with pytest.raises(SystemExit) as info:
        load(env_file, service)
    assert isinstance(info.value, ConfigError)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


# --- sources and precedence ---


def test_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path / "nope" / ".env")  # no `.env`, nor its folder: fine
    assert settings.service == "users"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.workers == 1
    assert settings.database_url == ""
    assert settings.log_level == "INFO"
    assert settings.trusted_proxies == ["127.0.0.1/32", "::1/128"]
    assert settings.cors_allow_origins == ["http://localhost:8080"]
    assert settings.profiling_enabled is False
    assert settings.public_key_pem() == ""


def test_prefix_wins_over_plain(env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("USERS_PORT", "8102")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load(env_file)
    assert settings.port == 8102
    assert settings.log_level == "DEBUG"  # the plain one where no prefixed one; normalised
    # another service's prefix is not ours: the plain one is used
    assert load(env_file, "orders").port == 9000


def test_service_is_the_argument_not_the_environment(
    env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE", "impostor")
    monkeypatch.setenv("USERS_SERVICE", "impostor")
    assert load(env_file).service == "users"


def test_env_file_values_are_used(env_file: Path) -> None:
    env_file.write_text(
        "PORT=9100\nUSERS_WORKERS=3\nREDIS_URL=redis://127.0.0.1:6379/0\n"
        "DATABASE_URL=postgresql://u@h/db\n# a comment\nEMPTY_KEY\n"
    )
    settings = load(env_file)
    assert settings.port == 9100
    assert settings.workers == 3
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url == "postgresql://u@h/db"


def test_process_env_wins_over_env_file(env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file.write_text("PORT=9100\nHOST=0.0.0.0\n")
    monkeypatch.setenv("PORT", "9200")
    settings = load(env_file)
    assert settings.port == 9200
    assert settings.host == "0.0.0.0"


def test_prefixed_in_file_beats_plain_in_env(
    env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prefix rule comes first: a prefixed name in `.env` beats a plain one in the env."""
    env_file.write_text("USERS_PORT=8102\n")
    monkeypatch.setenv("PORT", "9200")
    assert load(env_file).port == 8102


# --- comma lists ---


@pytest.mark.parametrize(
    ("source", "origins", "expected"),
    [
        ("", "http://a.example,https://b.example", ["http://a.example", "https://b.example"]),
        ("USERS_", "http://a.example", ["http://a.example"]),  # one item, no comma
        (".env", "http://a.example,https://b.example", ["http://a.example", "https://b.example"]),
    ],
)
def test_comma_lists(
    env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    origins: str,
    expected: list[str],
) -> None:
    """From a plain variable, a prefixed one or `.env`: split, trimmed, empty items dropped."""
    lists = {"TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1/32 ,,", "CORS_ALLOW_ORIGINS": origins}
    if source == ".env":
        env_file.write_text("".join(f"{name}={value}\n" for name, value in lists.items()))
    else:
        for name, value in lists.items():
            monkeypatch.setenv(source + name, value)
    settings = load(env_file)
    assert settings.trusted_proxies == ["10.0.0.0/8", "127.0.0.1/32"]
    assert settings.cors_allow_origins == expected


# --- bad values: exit 2, one line naming the variable that supplied the value ---


def test_bad_int_from_env_file_names_the_variable(
    env_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file.write_text("USERS_PORT=eighty\n")
    assert fails(env_file, capsys).startswith("config: USERS_PORT: Input should be a valid integer")


URL_SCHEME = "USERS_DATABASE_URL: Value error, must start with postgresql:// or mysql://"


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        ({"WORKERS": "2", "USERS_WORKERS": "zero"},
         "USERS_WORKERS: Input should be a valid integer, unable to parse string as an integer"),
        ({"WORKERS": "0"}, "WORKERS: Input should be greater than or equal to 1"),
        ({"WORKERS": "65"}, "WORKERS: Input should be less than or equal to 64"),
        ({"PORT": "70000"}, "PORT: Input should be less than or equal to 65535"),
        ({"PORT": "0"}, "PORT: Input should be greater than or equal to 1"),
        ({"SHUTDOWN_TIMEOUT": "0"}, "SHUTDOWN_TIMEOUT: Input should be greater than 0"),
        ({"PROFILING_ENABLED": "maybe"},
         "PROFILING_ENABLED: Input should be a valid boolean, unable to interpret input"),
        ({"LOG_LEVEL": "verbose"},
         "LOG_LEVEL: Value error, must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        *(({"USERS_DATABASE_URL": url}, URL_SCHEME)
          for url in ("sqlite:///tmp/x.db", "http://db:5432/x", "postgresql:/no-slashes",
                      "localhost")),
        *(({"REDIS_SENTINELS": f"127.0.0.1:7415,{entry}"},
           f"REDIS_SENTINELS: Value error, {entry!r} is not host:port")
          for entry in ("sentinel-a", "sentinel-a:", ":26379", "h:0", "h:65536", "h:x")),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_line_naming_its_variable(
    env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    line: str,
) -> None:
    """The variable that supplied the value (a prefixed one over a plain one), exactly."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert fails(env_file, capsys) == f"config: {line}\n"


def test_every_bad_variable_gets_a_line(
    env_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "x")
    monkeypatch.setenv("USERS_LOG_LEVEL", "loud")
    lines = fails(env_file, capsys).splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["PORT", "USERS_LOG_LEVEL"]


@pytest.mark.parametrize(
    "url", ["postgresql://u@h:5432/d", "postgres://u@h/d", "mysql://root@127.0.0.1:3306/d"]
)
def test_database_url_good_schemes(
    env_file: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert load(env_file).database_url == url


def test_workers_need_redis(
    env_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKERS", "2")
    assert fails(env_file, capsys) == (
        "config: settings: Value error, WORKERS > 1 needs REDIS_URL or REDIS_SENTINELS "
        "(rate limits and fan-out are shared)\n"
    )
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load(env_file).workers == 2


def test_workers_may_share_redis_through_sentinel(
    env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKERS", "2")
    monkeypatch.setenv("REDIS_SENTINELS", "127.0.0.1:7415, sentinel-b:26379")
    settings = load(env_file)
    assert settings.redis_sentinels == ["127.0.0.1:7415", "sentinel-b:26379"]
    assert settings.redis_sentinel_service == "fixup"


def test_pool_min_above_max(
    env_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DB_POOL_MIN", "5")
    monkeypatch.setenv("USERS_DB_POOL_MAX", "3")
    assert fails(env_file, capsys) == (
        "config: settings: Value error, DB_POOL_MIN must not exceed DB_POOL_MAX\n"
    )
    monkeypatch.setenv("USERS_DB_POOL_MAX", "5")
    settings = load(env_file)
    assert (settings.db_pool_min, settings.db_pool_max) == (5, 5)


# --- JWT keys ---

PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAexample\n-----END PUBLIC KEY-----\n"


def test_jwt_key_from_file(env_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    public = tmp_path / "public.pem"
    public.write_text(PEM)
    private = tmp_path / "private.pem"
    private.write_text("PRIVATE")
    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(public))
    monkeypatch.setenv("USERS_JWT_PRIVATE_KEY_FILE", str(private))
    settings = load(env_file)
    assert settings.public_key_pem() == PEM
    assert settings.private_key_pem() == "PRIVATE"
    assert "PRIVATE" not in repr(settings)


def test_inline_jwt_key_wins_and_unescapes_newlines(
    env_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    public = tmp_path / "public.pem"
    public.write_text("FROM FILE")
    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(public))
    monkeypatch.setenv("JWT_PUBLIC_KEY", PEM.replace("\n", "\\n"))
    settings = load(env_file)
    assert settings.public_key_pem() == PEM
    assert PEM not in repr(settings)  # SecretStr


def test_jwt_key_file_missing_is_a_config_error(
    env_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(tmp_path / "missing.pem"))
    assert fails(env_file, capsys).startswith("config: JWT_PUBLIC_KEY_FILE: ")
