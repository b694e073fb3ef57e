"""lib/storage/local on a temporary directory: where objects land (never outside the root),
the atomic write, delete of a missing object, and the signed URL to the exact character:
its route, expiry and HMAC, and `check` at the edges (the expiry instant, the longest
expiry accepted, anything not digits)."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

import pytest

from lib.keyring import Keyring, symmetric
from lib.storage import LocalStorage, ObjectNotFound

KEY = "A" * 32 + ".png"
SIGNING = b"s" * 32


def names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def storage(root: str | Path, **extra: object) -> LocalStorage:
    return LocalStorage(root, signing_key=SIGNING, ttl=60, **extra)  # type: ignore[arg-type]


def signature(key: str, expires: int | str) -> str:
    return hmac.new(SIGNING, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def test_a_signing_key_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^local storage needs a signing key") as refused:
        LocalStorage(tmp_path, signing_key=b"", ttl=60)
    assert str(refused.value) == "local storage needs a signing key (STORAGE_SIGNING_KEY)"
    assert not (tmp_path / "x").exists()


def test_the_root_is_made_resolved_and_may_exist(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    made = storage(str(tmp_path / "a" / ".." / "a" / "b"))  # a str, with a `..` in it
    assert made.root == root
    assert root.is_dir()
    assert storage(root).root == root  # it exists now: fine
    assert (made.keys, made.ttl, made.route) == (Keyring.single(SIGNING), 60, "/v1/pictures/")


async def test_put_writes_the_bytes_under_the_key_and_nothing_else(tmp_path: Path) -> None:
    store = storage(tmp_path)
    await store.put(KEY, b"first", "image/png")
    await store.put(KEY, b"second, longer", "image/png")  # replaced whole
    assert names(tmp_path) == [KEY]  # no temporary file left
    assert (tmp_path / KEY).read_bytes() == b"second, longer"
    assert store.path(KEY) == tmp_path / KEY


async def test_delete_removes_and_a_missing_object_is_no_error(tmp_path: Path) -> None:
    store = storage(tmp_path)
    await store.put(KEY, b"x", "image/png")
    other = "B" * 32 + ".jpg"
    await store.put(other, b"y", "image/jpeg")
    await store.delete(KEY)
    assert names(tmp_path) == [other]
    await store.delete(KEY)  # already gone
    assert names(tmp_path) == [other]


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "..", KEY + "/../x", "/etc/passwd.png", "a.exe", "short.png", ""],
)
async def test_keys_that_could_leave_the_root_name_nothing(tmp_path: Path, key: str) -> None:
    store = storage(tmp_path)
    with pytest.raises(ObjectNotFound) as refused:
        store.path(key)
    assert refused.value.args == (key,)
    with pytest.raises(ObjectNotFound):
        await store.put(key, b"x", "image/png")
    with pytest.raises(ObjectNotFound):
        await store.delete(key)
    assert names(tmp_path) == []


def test_a_symlinked_root_is_compared_resolved(tmp_path: Path) -> None:
    """The root is resolved once, so a key's resolved parent is the root itself."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    store = storage(tmp_path / "link")
    assert store.path(KEY) == tmp_path / "real" / KEY


def test_a_key_resolving_elsewhere_is_refused(tmp_path: Path) -> None:
    """A well-formed key that is a symlink out of the root: its resolved parent is not the
    root, so it names nothing."""
    store = storage(tmp_path / "root")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / KEY).symlink_to(tmp_path / "elsewhere" / KEY)
    with pytest.raises(ObjectNotFound) as refused:
        store.path(KEY)
    assert refused.value.args == (KEY,)


async def test_the_url_is_the_route_key_expiry_and_signature(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path, signing_key=SIGNING, ttl=300, route="/pics/")
    before = int(time.time())
    url = await store.url(KEY)
    after = int(time.time())
    path, query = url.split("?")
    assert path == f"/pics/{KEY}"
    expires_part, kid_part, sig_part = query.split("&")
    expires = int(expires_part.removeprefix("expires="))
    assert before + 300 <= expires <= after + 300
    assert sig_part == f"sig={signature(KEY, expires)}"
    assert kid_part == "kid=k0"  # one key: the legacy id, the key of URLs without kid
    assert url == f"/pics/{KEY}?expires={expires}&kid=k0&sig={signature(KEY, expires)}"
    assert store.sign(KEY, expires) == signature(KEY, expires)


def test_check_at_the_edges(tmp_path: Path) -> None:
    store = storage(tmp_path)
    at = 2_000_000_000
    sig = signature(KEY, at)
    assert store.check(KEY, str(at), sig, now=at - 1)
    assert not store.check(KEY, str(at), sig, now=at)  # at its expiry: expired
    assert not store.check(KEY, str(at), sig, now=at + 1)
    assert not store.check(KEY, str(at), sig[:-1] + ("0" if sig[-1] != "0" else "1"), now=0)
    assert not store.check(KEY, str(at + 1), sig, now=0)  # another expiry
    assert not store.check("B" * 32 + ".png", str(at), sig, now=0)  # another key
    longest = 10**12 - 1  # 12 digits: accepted
    assert store.check(KEY, str(longest), signature(KEY, longest), now=0)
    too_long = 10**12  # 13 digits: refused before any arithmetic
    assert not store.check(KEY, str(too_long), signature(KEY, too_long), now=0)
    for bad in (  # the last: full-width digits, which str.isdigit() takes for digits
        "",
        "-5",
        "1e9",
        " 2000000000",
        "\uff12\uff10\uff10\uff10",
    ):
        assert not store.check(KEY, bad, signature(KEY, bad), now=0), bad


def test_check_without_now_reads_the_clock(tmp_path: Path) -> None:
    store = storage(tmp_path)
    future = int(time.time()) + 60
    past = int(time.time()) - 1
    assert store.check(KEY, str(future), signature(KEY, future))
    assert not store.check(KEY, str(past), signature(KEY, past))


def test_sign_uses_the_key_its_kid_names(tmp_path: Path) -> None:
    """None: the current key; a kid: that key, retired or not; a kid the ring does not
    hold: KeyError naming it."""
    other = b"o" * 32
    ring = Keyring((symmetric("k0", SIGNING, "retired"), symmetric("k1", other)))
    store = LocalStorage(tmp_path, signing_key=ring, ttl=60)
    at = 2_000_000_000
    by_k1 = hmac.new(other, f"{KEY}\n{at}".encode(), hashlib.sha256).hexdigest()
    assert store.sign(KEY, at) == store.sign(KEY, at, "k1") == by_k1
    assert store.sign(KEY, at, "k0") == signature(KEY, at)  # the retired key, by its kid
    with pytest.raises(KeyError) as unknown:
        store.sign(KEY, at, "k7")
    assert unknown.value.args == ("k7",)
