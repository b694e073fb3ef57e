"""IDOR sweeps on the running services (run by test_security.py): every route that
takes an id, called by someone who is not allowed near that resource (another customer, a
provider with nothing to do with it, a provider of the same service once the order is
taken) → 404 exactly as for an id that does not exist, and every table unchanged (read
back). Lists never show it either. A picture URL altered in any part → 403. Chat: another
user's conversation and its messages on every route, the WebSocket handshake included."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp

from lib.auth.principal import Role
from tests.integration.orders_support import offer_body
from tests.integration.users_support import make_user
from tests.pictures_support import png
from tests.reliability import figures
from tests.reliability.readback import fingerprint
from tests.reliability.world import (
    Actor,
    Orders,
    actor,
    call,
    catalog_service,
    talk,
    ws_handshake,
    ws_url,
)
from tools.local.service_process import ServiceProcess

PROBLEM = "application/problem+json"
PNG = png()  # a real picture: uploads are decoded; re-encoding it gives the same bytes


@dataclass(frozen=True)
class Attempt:
    method: str
    path: str  # with {id} where the victim's id goes
    victim: str
    intruders: tuple[Actor, ...]
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    form: bool = False  # a multipart picture instead of JSON


async def answer(http: aiohttp.ClientSession, base: str, attempt: Attempt, who: Actor,
                 target: str) -> tuple[int, str, str]:  # fmt: skip
    url = base + attempt.path.format(id=target)
    headers = {**who.headers, **dict(attempt.headers)}
    kwargs: dict[str, Any] = {"json": attempt.body}
    if attempt.form:
        form = aiohttp.FormData()
        form.add_field("image", PNG, filename="p.png", content_type="image/png")
        kwargs = {"data": form}
    async with http.request(attempt.method, url, headers=headers, **kwargs) as resp:
        return resp.status, resp.content_type, await resp.text()


async def sweep(http: aiohttp.ClientSession, base: str, attempts: list[Attempt]) -> int:
    """Each intruder on each attempt: 404 problem+json, the same as for an unknown id (403
    for a role the operation does not declare: its guard answers before reading a row)."""
    refused = 0
    for attempt in attempts:
        for who in attempt.intruders:
            status, kind, body = await answer(http, base, attempt, who, attempt.victim)
            label = (attempt.method, attempt.path, who.role.value, status, body[:300])
            assert status in (403, 404), label
            assert status == 404 or "requires role" in body, label
            assert kind == PROBLEM, label
            # no oracle: an id that does not exist gets the very same answer
            unknown = await answer(http, base, attempt, who, str(uuid.uuid4()))
            assert unknown[0] == status, (label, unknown)
            refused += 1
    return refused


async def listed_ids(http: aiohttp.ClientSession, url: str, who: Actor) -> set[str]:
    body = await call(http, "GET", f"{url}?limit=100", who, 200)
    return {row["id"] for row in body["data"]}


async def orders_sweep(orders: ServiceProcess, catalog: ServiceProcess, orders_dsn: str) -> None:
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    other_customer = actor(Role.CUSTOMER)
    stranger = actor(Role.PROVIDER)  # offers no service of these orders
    rival = actor(Role.PROVIDER)  # offers the same service: sees OPEN orders, nothing else
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider, rival)
        steps = Orders(http, orders.url, service_id, customer, provider)
        open_order = await steps.order()
        offer = await steps.offer(open_order["id"])
        spare_order = await steps.order()  # another OPEN order of the same customer
        pending = await steps.job("PENDING")
        running = await steps.job("IN_PROGRESS")
        done = await steps.job("COMPLETED")
        outsiders = (other_customer, stranger)
        everyone = (other_customer, stranger, rival)
        if_match = (("If-Match", '"1"'),)
        attempts = [
            Attempt("GET", "/v1/orders/{id}", open_order["id"], outsiders),
            Attempt("GET", "/v1/orders/{id}", done["order_id"], everyone),
            Attempt(
                "PATCH",
                "/v1/orders/{id}",
                open_order["id"],
                outsiders,
                {"description": "pwned"},
                if_match,
            ),
            Attempt(
                "PATCH",
                "/v1/orders/{id}",
                pending["order_id"],
                everyone,
                {"description": "pwned"},
                if_match,
            ),
            Attempt("POST", "/v1/orders/{id}/cancel", open_order["id"], outsiders),
            Attempt("POST", "/v1/orders/{id}/cancel", pending["order_id"], everyone),
            Attempt("POST", "/v1/orders/{id}/offers", open_order["id"], (stranger,), offer_body()),
            Attempt(
                "POST",
                "/v1/orders/{id}/offers",
                running["order_id"],
                (stranger, rival),
                offer_body(),
            ),
            Attempt("GET", "/v1/orders/{id}/offers", open_order["id"], outsiders),
            Attempt("GET", "/v1/orders/{id}/offers", done["order_id"], everyone),
            Attempt(
                "POST",
                f"/v1/orders/{open_order['id']}/offers/{{id}}/withdraw",
                offer["id"],
                everyone,
            ),
            Attempt(
                "POST",
                f"/v1/orders/{open_order['id']}/offers/{{id}}/accept",
                offer["id"],
                outsiders,
            ),
            Attempt(
                "POST",
                "/v1/orders/{id}/offers/" + offer["id"] + "/accept",
                open_order["id"],
                outsiders,
            ),
            Attempt("GET", "/v1/jobs/{id}", pending["id"], everyone),
            Attempt("GET", "/v1/jobs/{id}", done["id"], everyone),
            Attempt("POST", "/v1/jobs/{id}/start", pending["id"], everyone),
            Attempt("POST", "/v1/jobs/{id}/complete", running["id"], everyone),
            Attempt("POST", "/v1/jobs/{id}/cancel", pending["id"], everyone),
            Attempt("POST", "/v1/jobs/{id}/cancel", running["id"], everyone),
            Attempt(
                "POST",
                "/v1/jobs/{id}/review",
                done["id"],
                everyone,
                {"rating": 1, "comment": "pwned"},
            ),
            # the right people, the wrong pairing: an offer through another order's path
            Attempt(
                "POST",
                f"/v1/orders/{spare_order['id']}/offers/{{id}}/accept",
                offer["id"],
                (customer,),
            ),
            Attempt(
                "POST",
                f"/v1/orders/{spare_order['id']}/offers/{{id}}/withdraw",
                offer["id"],
                (provider,),
            ),
        ]
        before = await fingerprint(orders_dsn)
        refused = await sweep(http, orders.url, attempts)
        assert await fingerprint(orders_dsn) == before, "a refused request changed the data"
        # lists: nobody else sees them (the rival only the OPEN orders of its service)
        mine = {open_order["id"], spare_order["id"]} | {
            j["order_id"] for j in (pending, running, done)
        }
        jobs = {pending["id"], running["id"], done["id"]}
        for who in everyone:
            assert not jobs & await listed_ids(http, f"{orders.url}/v1/jobs", who), who
        for who in outsiders:
            assert not mine & await listed_ids(http, f"{orders.url}/v1/orders", who), who
        seen = await listed_ids(http, f"{orders.url}/v1/orders", rival)
        assert mine & seen == {open_order["id"], spare_order["id"]}
        offers = await call(http, "GET", f"{orders.url}/v1/orders/{open_order['id']}/offers",
                            rival, 200)  # fmt: skip
        assert offers["data"] == []  # the rival sees the OPEN order, not others' offers
        # the controls: the owners still reach all of it
        assert (await listed_ids(http, f"{orders.url}/v1/orders", customer)) >= mine
        assert (await listed_ids(http, f"{orders.url}/v1/jobs", provider)) >= jobs
    figures.add("IDOR attempts refused (404, nothing changed)", refused)


async def users_sweep(users: ServiceProcess, users_dsn: str) -> None:
    victim = actor(Role.CUSTOMER, await make_user(users_dsn, Role.CUSTOMER))
    other = actor(Role.CUSTOMER, await make_user(users_dsn, Role.CUSTOMER))
    provider = actor(Role.PROVIDER, await make_user(users_dsn, Role.PROVIDER))
    intruders = (other, provider)
    async with aiohttp.ClientSession() as http:
        urls, versions = {}, {}
        for who in (victim, other):
            form = aiohttp.FormData()
            form.add_field("image", PNG, filename="p.png", content_type="image/png")
            url = f"{users.url}/v1/users/me/picture"
            async with http.put(url, data=form, headers=who.headers) as resp:
                assert resp.status == 204, await resp.text()
            me = await call(http, "GET", f"{users.url}/v1/users/me", who, 200)
            urls[who.id] = me["data"]["picture_url"]
            versions[who.id] = me["data"]["version"]
        # the victim's own version: a refusal must come from who asks, not from a stale ETag
        version = (("If-Match", f'"{versions[victim.id]}"'),)
        victim_id = str(victim.id)
        attempts = [
            Attempt("GET", "/v1/users/{id}", victim_id, intruders),
            Attempt(
                "PATCH", "/v1/users/{id}", victim_id, intruders, {"first_name": "Mallory"}, version
            ),
            Attempt(
                "PATCH",
                "/v1/users/{id}",
                victim_id,
                intruders,
                {"role": "ADMIN", "verified": True},
                version,
            ),
            Attempt("DELETE", "/v1/users/{id}", victim_id, intruders, None, version),
            Attempt("PUT", "/v1/users/{id}/picture", victim_id, intruders, form=True),
        ]
        before = await fingerprint(users_dsn)
        refused = await sweep(http, users.url, attempts)
        # a picture URL changed in any part: 403, whoever asks
        tampered = tampered_urls(urls[victim.id], urls[other.id])
        for url in tampered:
            async with http.get(users.url + url, headers=other.headers) as resp:
                assert resp.status == 403, (url, resp.status)
                assert resp.content_type == PROBLEM
        async with http.get(users.url + urlsplit(urls[victim.id]).path) as resp:
            assert resp.status == 400  # no signature at all: the required expires and sig
            assert {e["field"] for e in (await resp.json())["errors"]} == {"expires", "sig"}
        async with http.get(users.url + urls[victim.id]) as resp:
            assert resp.status == 200  # the control: the URL as given works
            assert await resp.read() == PNG
        assert await fingerprint(users_dsn) == before, "a refused request changed the data"
        # the control: the very If-Match of the sweep lets the victim change their profile
        await call(http, "PATCH", f"{users.url}/v1/users/{victim_id}", victim, 200,
                   {"first_name": "Still Me"}, **dict(version))  # fmt: skip
    figures.add("IDOR attempts refused (404, nothing changed)", refused)
    figures.add("tampered picture URLs refused (403)", len(tampered) + 1)


async def chat_sweep(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess, chat_dsn: str
) -> None:
    """A conversation between a customer and a provider, with messages; another customer, a
    provider with nothing to do with the order, and a rival provider with an offer (and a
    conversation of its own) on the very same order each try every chat route on it, the
    WebSocket handshake included: 404, as for an unknown id; nothing stored."""
    customer, provider, other_customer = (actor(r) for r in (Role.CUSTOMER, Role.PROVIDER,
                                                             Role.CUSTOMER))  # fmt: skip
    stranger, rival = actor(Role.PROVIDER), actor(Role.PROVIDER)
    everyone = (other_customer, stranger, rival)
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider, rival)
        victim = await talk(Orders(http, orders.url, service_id, customer, provider), chat.url)
        first = await victim.post(customer, "The door code is 4711")
        last = await victim.post(provider, "Noted, see you at nine")
        rivals = await talk(
            Orders(http, orders.url, service_id, customer, rival), chat.url, victim.order_id
        )
        pwned = {"body": "pwned"}
        attempts = [
            Attempt("GET", "/v1/conversations/{id}", victim.id, everyone),
            Attempt("GET", "/v1/conversations/{id}/messages", victim.id, everyone),
            Attempt(
                "GET",
                "/v1/conversations/{id}/messages?after=" + first["data"]["cursor"],
                victim.id,
                everyone,
            ),
            Attempt(
                "GET",
                "/v1/conversations/{id}/messages?before=" + last["data"]["cursor"],
                victim.id,
                everyone,
            ),
            Attempt("POST", "/v1/conversations/{id}/messages", victim.id, everyone, pwned),
            Attempt(
                "POST",
                "/v1/conversations/{id}/messages",
                victim.id,
                everyone,
                pwned,
                (("Idempotency-Key", f"idor-{uuid.uuid4().hex}"),),
            ),
            Attempt("GET", "/v1/conversations/{id}/ws", victim.id, everyone),  # no upgrade
            # the right people, the wrong pairing: the provider on the rival's conversation
            Attempt("GET", "/v1/conversations/{id}", rivals.id, (provider,)),
            Attempt("GET", "/v1/conversations/{id}/messages", rivals.id, (provider,)),
            Attempt("POST", "/v1/conversations/{id}/messages", rivals.id, (provider,), pwned),
        ]
        before = await fingerprint(chat_dsn)
        refused = await sweep(http, chat.url, attempts)
        # the handshake proper (Upgrade: websocket, the token as a subprotocol)
        handshakes = [(who, victim.id) for who in everyone] + [(provider, rivals.id)]
        for who, target in handshakes:
            token = who.headers["Authorization"].removeprefix("Bearer ")
            assert await ws_handshake(http, ws_url(chat.url, target), token) == 404, who
            assert await ws_handshake(http, ws_url(chat.url, str(uuid.uuid4())), token) == 404
            refused += 1
        # starting the victim's conversation again, or one on the victim's order for oneself
        starts = [(who, str(provider.id)) for who in everyone] + [(stranger, str(stranger.id))]
        for who, provider_id in starts:
            for order_id in (victim.order_id, str(uuid.uuid4())):
                body = {"order_id": order_id, "provider_id": provider_id}
                answer = await call(http, "POST", f"{chat.url}/v1/conversations", who, 404, body)
                assert answer["status"] == 404, answer
            refused += 1
        assert await fingerprint(chat_dsn) == before, "a refused request changed the data"
        for who in everyone:
            seen = await listed_ids(http, f"{chat.url}/v1/conversations", who)
            assert victim.id not in seen, who
        assert await listed_ids(http, f"{chat.url}/v1/conversations", rival) == {rivals.id}
        # the controls: the participants still reach all of it, the socket included
        assert await listed_ids(http, f"{chat.url}/v1/conversations", customer) == {
            victim.id,
            rivals.id,
        }
        assert [m["body"] for m in await victim.messages(provider)] == [
            "The door code is 4711",
            "Noted, see you at nine",
        ]
        for who in (customer, provider):
            token = who.headers["Authorization"].removeprefix("Bearer ")
            assert await ws_handshake(http, ws_url(chat.url, victim.id), token) == 101
    figures.add("IDOR attempts refused (404, nothing changed)", refused)
    figures.add("IDOR attempts refused (404, nothing changed): chat", refused)


def tampered_urls(victim: str, other: str) -> list[str]:
    """The victim's picture URL altered: signature, expiry, and the other user's signature
    on the victim's key."""
    v, o = urlsplit(victim), urlsplit(other)
    vq, oq = dict(parse_qsl(v.query)), dict(parse_qsl(o.query))
    flipped = vq["sig"][:-1] + ("0" if vq["sig"][-1] != "0" else "1")
    return [
        f"{v.path}?{urlencode({**vq, 'sig': flipped})}",
        f"{v.path}?{urlencode({**vq, 'expires': str(int(vq['expires']) + 3600)})}",
        f"{v.path}?{urlencode(oq)}",
        f"{o.path}?{urlencode(vq)}",
    ]
