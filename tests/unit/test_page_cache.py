"""lib.http.conditional.PageCache (ADR 0056): a page is answered only under the stamp it
was rendered under, the least recently used goes first, the bytes held never pass the
bound, and only a plain 200 carrying the tag read before the handler is kept."""

from __future__ import annotations

import uuid

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from lib.http.conditional import ENTRY_OVERHEAD, PageCache, key_size

EXERCISES = ()  # lib/http only: the paths below are keys, no service runs
TAG = '"1f.0"'


def page(body: bytes, tag: str = TAG, status: int = 200) -> web.Response:
    return web.Response(
        body=body, status=status, headers={"ETag": tag}, content_type="application/json"
    )


def counted(name: str, service: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": service}) or 0.0


def fresh(limit: int) -> tuple[PageCache, str]:
    service = f"unit-{uuid.uuid4().hex[:8]}"
    return PageCache(limit, service), service


def test_a_page_is_answered_under_its_stamp_only() -> None:
    cache, service = fresh(10_000)
    key = ("/v1/departments", (("limit", "5"),), None)
    assert cache.get(key, 31) is None
    cache.keep(key, 31, TAG, page(b'{"data":[]}'))
    kept = cache.get(key, 31)
    assert kept is not None
    answer = kept.response('"1f.abc"')  # the request's own tag, the page's body
    assert (answer.status, answer.body, answer.headers["ETag"]) == (200, b'{"data":[]}', '"1f.abc"')
    assert answer.content_type == "application/json"
    assert cache.get(key, 32) is None  # the stamp moved: a miss
    assert cache.get(("/v1/departments", (), None), 31) is None  # another query: a miss
    assert counted("page_cache_hits_total", service) == 1
    assert counted("page_cache_misses_total", service) == 3


def test_the_least_recently_used_goes_first_and_the_bound_holds() -> None:
    body = b"x" * 100
    one = 100 + len("Content-Type") + len("application/json") + ENTRY_OVERHEAD
    keys = [(f"/v1/p{n}", (), None) for n in range(4)]
    cache, service = fresh(3 * (one + key_size(keys[0])))
    for key in keys[:3]:
        cache.keep(key, 1, TAG, page(body))
    assert len(cache) == 3
    assert cache.get(keys[0], 1) is not None  # now the most recently used
    cache.keep(keys[3], 1, TAG, page(body))
    assert cache.get(keys[1], 1) is None  # the least recently used went
    assert all(cache.get(k, 1) is not None for k in (keys[0], keys[2], keys[3]))
    assert counted("page_cache_evictions_total", service) == 1
    assert cache.size <= cache.limit
    assert counted("page_cache_bytes", service) == cache.size


def test_a_page_kept_again_replaces_the_old_one() -> None:
    cache, _ = fresh(10_000)
    key = ("/v1/departments", (), None)
    cache.keep(key, 1, TAG, page(b"old"))
    size = cache.size
    cache.keep(key, 2, TAG, page(b"newer"))
    assert cache.size == size + 2
    kept = cache.get(key, 2)
    assert kept is not None
    assert kept.body == b"newer"
    assert cache.get(key, 1) is None


def test_only_a_plain_200_with_the_tag_read_before_is_kept() -> None:
    cache, _ = fresh(10_000)
    key = ("/v1/departments", (), None)
    cache.keep(key, 1, TAG, page(b"{}", status=404))
    cache.keep(key, 1, TAG, page(b"{}", tag='"20.0"'))  # the handler read a newer tag
    with_cookie = page(b"{}")
    with_cookie.set_cookie("session", "s")
    cache.keep(key, 1, TAG, with_cookie)
    cache.keep(key, 1, TAG, web.StreamResponse(headers={"ETag": TAG}))
    cache.keep(key, 1, TAG, page(b"z" * 20_000))  # larger than the whole bound
    assert len(cache) == 0
    assert cache.size == 0


def test_no_bytes_is_no_cache() -> None:
    with pytest.raises(ValueError, match="PAGE_CACHE_BYTES=0"):
        PageCache(0)
