"""bench/httparena.py fetches HttpArena at its pinned commit, or fails naming what it needs
(git and HTTPS to github.com), leaving no partial checkout behind as the real one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import httparena


def test_an_unreachable_repository_fails_naming_what_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(httparena, "REPOSITORY", (tmp_path / "nowhere").as_uri())
    monkeypatch.setattr(httparena, "CHECKOUT", tmp_path / "var" / "httparena" / "pinned")
    with pytest.raises(httparena.Unavailable) as raised:
        httparena.checkout()
    message = str(raised.value)
    assert httparena.COMMIT in message
    assert "github.com" in message
    assert "--source spec" in message
    assert not httparena.CHECKOUT.exists()  # a later run fetches again
    assert not list(httparena.CHECKOUT.parent.iterdir())  # nor half of one


def test_a_commit_without_the_entry_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository that has the pinned commit but not their aiohttp entry: named."""
    origin = tmp_path / "origin"
    origin.mkdir()

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=origin,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    git("init", "-q")
    git("config", "uploadpack.allowAnySHA1InWant", "true")
    (origin / "README.md").write_text("no frameworks here\n")
    git("add", "README.md")
    git("commit", "-q", "-m", "one")
    monkeypatch.setattr(httparena, "REPOSITORY", origin.as_uri())
    monkeypatch.setattr(httparena, "COMMIT", git("rev-parse", "HEAD"))
    monkeypatch.setattr(httparena, "CHECKOUT", tmp_path / "var" / "pinned")
    with pytest.raises(httparena.Unavailable, match=r"has no frameworks/aiohttp/app\.py"):
        httparena.checkout()
    assert not list(httparena.CHECKOUT.parent.iterdir())


def test_the_load_rotates_the_documented_limits(tmp_path: Path) -> None:
    paths = [f"/async-db?min=10&max=50&limit={n}" for n in httparena.LIMITS]
    script = Path(httparena.rotating_script("aiohttp", paths, tmp_path)).read_text()
    assert httparena.LIMITS == (5, 10, 20, 35, 50)
    assert all(f'"{p}"' in script for p in paths)
    assert httparena.CONNECTIONS == 32  # 1,024 on 64 CPUs, scaled to two cores
