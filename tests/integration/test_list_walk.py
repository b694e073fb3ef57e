"""Every list walked against its own numbers (issue 57).

The lists come from each built REST service's SERVED /v1/openapi.json (a GET taking
`limit`; a new service's included: it runs alone on its own migrated database, filled
through its create operation). For every sort key x direction, page sizes 1-3 and every
declared filter with each value class (true and false, every enum value, 0, empty, no
match, some match), the list is read as one large page and walked by `page` and by its
cursor where it declares them; the walk must give the same rows in the same order, none
twice, none missing, ties broken by the unique key; `meta.total` and every aggregate of
`meta` (users' statistics, reviews' avg_rating) must be what the rows give; a value class
the filter cannot take is a 400 naming it. An unchanged list answers 304 to its ETag and
200 after a write; the declared defaults (orderby's first value, sort, limit) are what the
handler does without the parameter.

`make test` walks a fixed sample (page sizes rotate, filters walk the default order);
`make test-lists` (LIST_WALK=all) walks every combination."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

import pytest

from lib.auth.principal import Role
from tests import pg
from tests.integration import list_walk_support as w
from tests.integration.auth_support import bearer
from tests.integration.test_access_matrix import (  # noqa: F401  (fixtures)
    HTTP_SERVICES,
    WIRED,
    plain_app,
    spec_of,
    stack,
)
from tests.integration.test_list_orders import count, dsns, fill, ids_of  # noqa: F401  (dsns: a fixture)


async def tie_created_at(dsn: str) -> None:
    """Rows two by two share their created_at (after `fill` set them apart): ties the
    unique key must break."""
    async with pg.connected(dsn) as conn:
        tables = await conn.fetch(
            "SELECT c.table_name FROM information_schema.columns c"
            " JOIN information_schema.columns i ON i.table_name = c.table_name"
            "  AND i.table_schema = 'public' AND i.column_name = 'id'"
            " WHERE c.table_schema = 'public' AND c.column_name = 'created_at'"
        )
        for row in tables:
            t = row["table_name"]
            await conn.execute(
                f"WITH r AS (SELECT id, created_at, (row_number() OVER (ORDER BY created_at, id)"
                f' - 1) / 2 AS g FROM "{t}"), m AS (SELECT id, min(created_at) OVER'
                f" (PARTITION BY g) AS tied FROM r)"
                f' UPDATE "{t}" SET created_at = m.tied FROM m WHERE "{t}".id = m.id'
            )


async def more_messages(chat: Any, customer: dict[str, str]) -> None:
    """`fill` writes one message a conversation: a few more in one, to page."""
    resp = await chat.get("/v1/conversations", headers=customer)
    assert resp.status == 200, await resp.text()
    first = (await resp.json())["data"][0]["id"]
    for n in range(5):
        path = f"/v1/conversations/{first}/messages"
        resp = await chat.post(path, json={"body": f"more {n}"}, headers=customer)
        assert resp.status == 201, await resp.text()


async def touch(dsn: str, row: dict[str, Any], unique: str) -> None:
    """A write the list shows: the row's updated_at (or its key, to itself) in its table
    (never the append-only audit_events: its trigger refuses any UPDATE, ADR 0057)."""
    async with pg.connected(dsn) as conn:
        tables = await conn.fetch(
            "SELECT table_name, bool_or(column_name = 'updated_at') AS stamped"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name <> 'audit_events'"
            " GROUP BY table_name HAVING bool_or(column_name = $1)",
            unique,
        )
        for t in tables:
            change = "updated_at = now()" if t["stamped"] else f'"{unique}" = "{unique}"'
            done = await conn.execute(
                f'UPDATE "{t["table_name"]}" SET {change} WHERE "{unique}"::text = $1',
                str(row[unique]),
            )
            if done != "UPDATE 0":
                return
        raise AssertionError(f"no table holds {unique}={row[unique]}")


async def archive_one(client: Any, admin: dict[str, str]) -> None:
    """One row of each archiving list (a `state` filter, ADR 0058) archived through its
    DELETE: rows the default list hides and `state` walks."""
    for listed in w.lists_of("", await spec_of(client)):
        if not listed.widest:
            continue
        status, body = await w.get(client, w.url(listed.template, {"limit": "1"}), admin)
        assert status == 200, (listed.name, body)
        row = body["data"][0]
        headers = {**admin, "If-Match": f'"{row["version"]}"'}
        resp = await client.delete(f"{listed.template}/{row['id']}", headers=headers)
        assert resp.status == 204, (listed.name, await resp.text())


def creatable(spec: dict[str, Any]) -> list[str]:
    """A new service's list paths that take a create (POST)."""
    return [p for p, m in spec["paths"].items() if "get" in m and "post" in m and "{" not in p]


async def create_rows(client: Any, spec: dict[str, Any], path: str, numbers: Iterable[int]) -> None:
    """Rows made through the create on a list's path, every required text field given
    (values two by two alike: ties)."""
    ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]
    for n in numbers:
        body = {name: f"Walked row {n // 2}" for name in schema.get("required", [])}
        resp = await client.post(path, json=body, headers=bearer(Role.ADMIN))
        assert resp.status == 201, (path, await resp.text())


async def unverified_users(dsn: str) -> None:
    """Users whose `verified` is false (the seed's are all true), ages two by two alike."""
    for n in range(3):
        await pg.execute(
            dsn,
            "INSERT INTO users (email, password_hash, first_name, last_name, phone_number,"
            " role, verified, age, salary) VALUES ($1, 'x', 'Una', $2, '+1 555 0100',"
            " 'CUSTOMER', false, $3, $4)",
            f"unverified{n}.{uuid.uuid4().hex}@example.com",
            f"Verified {n}",
            30 + n // 2,
            Decimal(41000 + 1000 * n),
        )


def caller_of(listed: w.Listed, callers: dict[Role, dict[str, str]]) -> dict[str, str]:
    """No header for a public list (but ADMIN for one with a filter only it may give: an
    archiving list's `state`); ADMIN when it may; else the one who made the rows."""
    if listed.access is None:
        return callers[Role.ADMIN] if listed.roles else {}
    roles = [r for r in (Role.ADMIN, Role.CUSTOMER) if r.value in listed.access["roles"]]
    return callers[roles[0]]


async def chosen_path(client: Any, listed: w.Listed, headers: dict[str, str], dsn: str) -> str:
    """The path, its {id} the one with the most rows."""
    if "{id}" not in listed.template:
        return listed.template
    counts = [
        (await count(client, f"{listed.template.format(id=i)}?limit={w.BIG}", headers), i)
        for i in await ids_of(dsn)
    ]
    return listed.template.format(id=max(counts)[1])


async def walk_list(
    client: Any, listed: w.Listed, path: str, headers: dict[str, str], whole_walk: bool
) -> list[str]:
    """Every check of one list; what is wrong."""
    wrong = await default_errors(client, listed, path, headers)
    status, body = await w.get(client, w.url(path, {"limit": str(w.BIG)}), headers)
    assert status == 200, (listed.name, status, body)
    plain = body["data"]  # what the list shows without a filter
    widest = listed.widest  # an archiving list: `state=all` has every row (ADR 0058)
    status, body = await w.get(client, w.url(path, {**widest, "limit": str(w.BIG)}), headers)
    assert status == 200, (listed.name, status, body)
    everything = body["data"]
    if widest and not len(everything) > len(plain):
        wrong.append(f"{widest}: {len(everything)} rows, {len(plain)} without it: none hidden")
    assert len(everything) >= 3, f"{listed.name}: {len(everything)} rows, too few to page"
    unique = w.unique_key(everything, listed.keys)
    classes: list[tuple[str, str] | None] = [None]
    for name, schema in listed.filters.items():
        classes += [(name, v) for v in w.filter_values(name, schema, everything)]
    counted: dict[str, list[int]] = {}
    for n, given in enumerate(classes):
        params = {} if given is None else {given[0]: given[1]}
        status, body = await w.get(client, w.url(path, {**params, "limit": str(w.BIG)}), headers)
        if given is not None and status == 400:
            named = [e.get("field") for e in body.get("errors", [])]
            if given[0] not in named:
                wrong.append(f"{given}: 400 not naming it: {body}")
            continue
        if status != 200:
            wrong.append(f"{given}: {status} {body}")
            continue
        rows = body["data"]
        wrong += [f"{given}: {e}" for e in w.aggregate_errors(body["meta"], rows)]
        if given is not None:
            wrong += filter_errors(given, rows, everything)
        if given is not None and given[1] not in ("0", "", widest.get(given[0])):
            counted.setdefault(given[0], []).append(len(rows))  # the values that split the rows
        for m, (key, sort) in enumerate(orders(listed)):
            if not whole_walk and given is not None and m > 0:
                break  # the sample: a filter walks the default order
            limits = (1, 2, 3) if whole_walk else (1 + (n + m) % 3,)
            wrong += [
                f"{given} {key} {sort}: {e}"
                for e in await walk_order(
                    client, listed, path, params, key, sort, limits, headers, unique
                )
            ]
    for name, totals in counted.items():  # a boolean's or an enum's values split the rows
        split = w.kind_of(listed.filters[name]) in ("boolean", "enum")
        whole = everything if name in widest else plain  # `state`: of every row
        if split and sum(totals) != len(whole):
            wrong.append(f"{name}: its values give {totals} rows of {len(whole)}")
    return wrong


def orders(listed: w.Listed) -> list[tuple[str | None, str | None]]:
    """Every key x direction, the default one first."""
    keys: list[str | None] = [*listed.keys] or [None]
    sorts: list[str | None] = [*listed.sorts] or [None]
    default = listed.defaults.get("sort")
    sorts.sort(key=lambda s: s != default)
    return [(k, s) for k in keys for s in sorts]


def filter_errors(
    given: tuple[str, str], rows: list[dict[str, Any]], everything: list[dict[str, Any]]
) -> list[str]:
    """The filtered rows are rows of the list, each with the value asked (when the rows
    carry a field of the filter's name)."""
    name, value = given
    wrong = []
    if not set(w.dump(rows)) <= set(w.dump(everything)):
        wrong.append(f"{given}: rows the unfiltered list does not have")
    if value == w.NO_MATCH_TEXT and rows:
        wrong.append(f"{given}: {len(rows)} rows match nothing")
    for row in rows:
        if isinstance(row.get(name), bool):  # a query's boolean: true|false, or 1|0
            value = {"0": "false", "1": "true"}.get(value, value)
        if name in row and value != "" and str(row[name]).lower() != value.lower():
            wrong.append(f"{given}: a row with {name}={row[name]}")
            break
    return wrong


async def walk_order(
    client: Any,
    listed: w.Listed,
    path: str,
    params: dict[str, str],
    key: str | None,
    sort: str | None,
    limits: tuple[int, ...],
    headers: dict[str, str],
    unique: str,
) -> list[str]:
    ordered = {**params, **({"orderby": key} if key else {}), **({"sort": sort} if sort else {})}
    status, body = await w.get(client, w.url(path, {**ordered, "limit": str(w.BIG)}), headers)
    if status != 200:
        return [f"{status} {body}"]
    whole = body["data"]
    wrong = w.aggregate_errors(body["meta"], whole)
    if key is not None:
        desc = sort == "desc"
        wrong += w.tie_errors(whole, key, listed.fallback.get(key), unique, desc)
    for limit in limits:
        if listed.paged:
            wrong += await w.walk_pages(client, path, ordered, headers, limit, whole)
        if listed.continues:
            param = listed.continues
            wrong += await w.walk_cursor(client, path, ordered, headers, limit, whole, param)
        if listed.backward:
            wrong += await w.walk_backward(client, path, headers, limit, whole)
    return wrong


async def default_errors(
    client: Any, listed: w.Listed, path: str, headers: dict[str, str]
) -> list[str]:
    """Without orderby, sort and limit: what the declared defaults answer."""
    declared = {n: str(v) for n, v in listed.defaults.items() if v is not None}
    declared |= listed.filter_defaults  # an archiving list's `state=active`
    if listed.keys:
        declared["orderby"] = listed.keys[0]
    plain = await w.get(client, path, headers)
    named = await w.get(client, w.url(path, declared), headers)
    if plain != named:
        return [f"the defaults {declared} are not what it does without them"]
    if "sort" in declared:
        other = {**declared, "sort": next(s for s in listed.sorts if s != declared["sort"])}
        flipped = await w.get(client, w.url(path, other), headers)
        values = {str(w.key_value(r, declared["orderby"], None)) for r in plain[1]["data"]}
        if len(values) > 1 and flipped == plain:
            return [f"sort={other['sort']} answers as the default {declared['sort']}"]
    return []


async def etag_errors(
    client: Any, listed: w.Listed, path: str, headers: dict[str, str], write: Write
) -> list[str]:
    """An unchanged list 304 to its ETag; after a write it shows, 200 with a new tag."""
    resp = await client.get(path, headers=headers)
    tag = resp.headers.get("ETag")
    rows = (await resp.json())["data"]
    if tag is None:
        return [] if listed.access is not None else ["a public list without an ETag"]
    again = await client.get(path, headers={**headers, "If-None-Match": tag})
    if again.status != 304:
        return [f"unchanged: {again.status} to its ETag"]
    await write(rows[0], w.unique_key(rows, listed.keys))
    after = await client.get(path, headers={**headers, "If-None-Match": tag})
    if after.status != 200 or after.headers.get("ETag") == tag:
        return [f"after a write: {after.status}, ETag {after.headers.get('ETag')}"]
    return []


Write = Callable[[dict[str, Any], str], Awaitable[None]]  # a row of the list, its unique key


async def walk_service(
    client: Any, service: str, callers: dict[Role, dict[str, str]], dsn: str, write: Write
) -> list[str]:
    """Every list `service` serves, walked; what is wrong."""
    lists = w.lists_of(service, await spec_of(client))
    assert lists, f"{service} serves no list"
    whole_walk = os.environ.get("LIST_WALK") == "all"
    wrong = []
    for listed in lists:
        headers = caller_of(listed, callers)
        path = await chosen_path(client, listed, headers, dsn)
        found = await walk_list(client, listed, path, headers, whole_walk)
        found += await etag_errors(client, listed, path, headers, write)
        wrong += [f"{listed.name}: {e}" for e in found]
    return wrong


async def test_every_list_walked_against_its_own_numbers(
    stack: dict[str, Any],  # noqa: F811  (the fixture)
    dsns: dict[str, str],  # noqa: F811  (the fixture)
) -> None:
    callers = await fill(stack, dsns)
    await more_messages(stack["chat"], callers[Role.CUSTOMER])
    await unverified_users(dsns["users"])
    for service in sorted(WIRED):
        await archive_one(stack[service], callers[Role.ADMIN])
    for dsn in dsns.values():
        await tie_created_at(dsn)
    wrong = []
    for service in sorted(WIRED):
        dsn = dsns[service]

        async def write(row: dict[str, Any], unique: str, dsn: str = dsn) -> None:
            await touch(dsn, row, unique)

        wrong += await walk_service(stack[service], service, callers, dsn, write)
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("service", [s for s in HTTP_SERVICES if s not in WIRED] or [None])
async def test_a_new_services_lists_walked(
    aiohttp_client: Any, migrated_db: Callable[[str], str], service: str | None
) -> None:
    """Every other built REST service (a new one: `make new-service`) alone on its own
    migrated database, its lists filled through their create operations."""
    if service is None:  # none today: every one is in the test above
        assert set(HTTP_SERVICES) == WIRED
        return
    dsn = migrated_db(service)
    client = await aiohttp_client(plain_app(service, dsn))
    spec = await spec_of(client)
    for path in creatable(spec):
        await create_rows(client, spec, path, range(7))
    callers = {role: bearer(role) for role in (Role.ADMIN, Role.CUSTOMER)}

    async def write(row: dict[str, Any], unique: str) -> None:
        for path in creatable(spec):
            await create_rows(client, spec, path, [-1])

    assert await walk_service(client, service, callers, dsn, write) == []
