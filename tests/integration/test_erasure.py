"""The erasure of a person in every service (lib/erasure.py, ADR 0060): DELETE
/v1/users/{id} writes the ledger, and the real users, catalog, orders and chat apps, each on
its own migrated database, apply it as docs/operations.md's retention table says; a service
that was down catches up when it starts; a database put back to before the erasure is
erased again; an entry is applied once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lib.auth.principal import Role
from lib.erasure import Entry, Ledger, LocalLedger, StorageSettings, open_ledger
from services.catalog.app import create_app as catalog_app
from services.chat.app import create_app as chat_app
from services.orders.app import create_app as orders_app
from services.users.app import create_app as users_app
from tests import pg
from tests.integration.catalog_support import catalog_settings, chain
from tests.integration.chat_support import chat_settings, eventually
from tests.integration.orders_support import orders_settings
from tests.integration.s3_support import new_bucket
from tests.integration.users_support import auth, make_user, users_settings
from tests.pictures_support import S3_KEYS
from tools.time_scale import scaled

INTERVAL = 0.05  # ERASURE_INTERVAL of every app here
# a round of each consumer: a few queries and a directory listing; many on a busy machine
WITHIN = scaled(5.0 + 20 * INTERVAL)


def erasure(storage: Path) -> dict[str, Any]:
    return {
        "storage_dir": str(storage),
        "erasure_interval": INTERVAL,
        "erasure_margin": 60.0,
        "erasure_batch": 2,
    }


async def seed(dsns: dict[str, str], catalog: Any, person: uuid.UUID) -> dict[str, Any]:
    """Rows about `person` in every database: an order, an offer, a review and a message
    written by them, a service they offer; and a message of the other party."""
    other = uuid.uuid4()
    service = (await chain(catalog))["service"]["id"]
    await pg.execute(
        dsns["catalog"],
        "INSERT INTO provider_services (provider_id, service_id) VALUES ($1, $2)",
        person,
        uuid.UUID(service),
    )
    async with pg.connected(dsns["orders"]) as conn:
        order = await conn.fetchval(
            "INSERT INTO orders (customer_id, customer_name, service_id, description, address,"
            " time_start, time_end) VALUES ($1, 'Ada Lovelace', $2, 'the sink leaks',"
            " '1 Private Road', now() + interval '1 day', now() + interval '2 days')"
            " RETURNING id",
            person,
            uuid.UUID(service),
        )
        offer = await conn.fetchval(
            "INSERT INTO offers (order_id, provider_id, price, currency, book_time, message)"
            " VALUES ($1, $2, 80.50, 'EUR', now() + interval '1 day', 'call me on 555 0100')"
            " RETURNING id",
            order,
            person,
        )
        job = await conn.fetchval(
            "INSERT INTO jobs (order_id, offer_id, customer_id, provider_id)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            order,
            offer,
            person,
            other,
        )
        await conn.execute(
            "INSERT INTO reviews (job_id, customer_id, provider_id, rating, comment)"
            " VALUES ($1, $2, $3, 4.5, 'quick, my neighbour Bob liked it too')",
            job,
            person,
            other,
        )
    async with pg.connected(dsns["chat"]) as conn:
        talk = await conn.fetchval(
            "INSERT INTO conversations (order_id, customer_id, provider_id)"
            " VALUES ($1, $2, $3) RETURNING id",
            order,
            person,
            other,
        )
        await conn.execute(
            "INSERT INTO messages (conversation_id, author_id, body, seq)"
            " VALUES ($1, $2, 'I live at 1 Private Road', 1), ($1, $3, 'on my way', 2)",
            talk,
            person,
            other,
        )
    return {"order": order, "offer": offer, "service": service}


async def erased_in(dsns: dict[str, str], person: uuid.UUID) -> dict[str, bool]:
    """Per database: the person's rows are as the retention table says, and recorded."""
    user = await pg.fetchrow(
        dsns["users"], "SELECT first_name, email, deleted_at FROM users WHERE id = $1", person
    )
    order = await pg.fetchrow(
        dsns["orders"],
        "SELECT o.customer_name, o.description, o.address, f.message, f.price, r.comment,"
        " r.rating FROM orders o JOIN offers f ON f.order_id = o.id"
        " JOIN jobs j ON j.order_id = o.id JOIN reviews r ON r.job_id = j.id"
        " WHERE o.customer_id = $1",
        person,
    )
    offered = await pg.fetchrow(
        dsns["catalog"],
        "SELECT count(*) AS n FROM provider_services WHERE provider_id = $1",
        person,
    )
    words = await pg.fetchrow(
        dsns["chat"],
        "SELECT array_agg(body ORDER BY seq) AS bodies FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id WHERE c.customer_id = $1",
        person,
    )
    recorded = {}
    for db, dsn in dsns.items():
        row = await pg.fetchrow(
            dsn, "SELECT count(*) AS n FROM erased_users WHERE user_id = $1", person
        )
        recorded[db] = row["n"] == 1
    return {
        "users": recorded["users"]
        and user["first_name"] == "Deleted"
        and user["email"] == f"deleted+{person}@invalid"
        and user["deleted_at"] is not None,
        "orders": recorded["orders"]
        and (order["customer_name"], order["description"], order["address"])
        == (None, "[erased]", "[erased]")
        and order["message"] is None
        and order["comment"] is None
        and str(order["price"]) == "80.50"  # amounts and ratings stay (accounting)
        and str(order["rating"]) == "4.5",
        "catalog": recorded["catalog"] and offered["n"] == 0,
        "chat": recorded["chat"] and words["bodies"] == ["[erased]", "on my way"],
    }


async def delete(users: Any, person: uuid.UUID) -> None:
    admin = auth(uuid.uuid4(), Role.ADMIN)
    resp = await users.delete(f"/v1/users/{person}", headers={**admin, "If-Match": '"1"'})
    assert resp.status == 204, await resp.text()


@pytest.fixture
async def world(
    aiohttp_client: Any,
    tmp_path: Path,
    users_dsn: str,
    catalog_dsn: str,
    orders_dsn: str,
    chat_dsn: str,
    redis_prefix: str,
) -> dict[str, Any]:
    """users, catalog and two orders processes running on one ledger; chat not yet
    (`start_chat`)."""
    config = erasure(tmp_path / "storage")
    dsns = {"users": users_dsn, "catalog": catalog_dsn, "orders": orders_dsn, "chat": chat_dsn}

    async def start_chat() -> Any:
        return await aiohttp_client(chat_app(chat_settings(chat_dsn, redis_prefix, **config)))

    return {
        "dsns": dsns,
        "ledger": LocalLedger(config["storage_dir"]),
        "users": await aiohttp_client(users_app(users_settings(users_dsn, **config))),
        "catalog": await aiohttp_client(catalog_app(catalog_settings(catalog_dsn, **config))),
        "orders": await aiohttp_client(orders_app(orders_settings(orders_dsn, **config))),
        # a second orders process: two consumers on one database apply an entry once
        "replica": await aiohttp_client(orders_app(orders_settings(orders_dsn, **config))),
        "start_chat": start_chat,
    }


async def test_an_erasure_reaches_every_service_and_one_that_was_down_catches_up(
    world: dict[str, Any],
) -> None:
    dsns = world["dsns"]
    person = await make_user(dsns["users"], Role.PROVIDER)
    await seed(dsns, world["catalog"], person)
    assert await erased_in(dsns, person) == dict.fromkeys(dsns, False)

    await delete(world["users"], person)
    assert [e.user_id for e in await world["ledger"].since(None)] == [person]

    async def up_erased() -> bool:
        done = await erased_in(dsns, person)
        return done["users"] and done["orders"] and done["catalog"]

    await eventually(up_erased, "users, orders and catalog erased", WITHIN)
    assert not (await erased_in(dsns, person))["chat"]  # down: nothing applied there yet

    await world["start_chat"]()

    async def all_erased() -> bool:
        return all((await erased_in(dsns, person)).values())

    await eventually(all_erased, "chat caught up when it started", WITHIN)


async def test_a_database_put_back_to_before_the_erasure_is_erased_again_once(
    world: dict[str, Any],
) -> None:
    dsns = world["dsns"]
    await world["start_chat"]()
    person = await make_user(dsns["users"], Role.PROVIDER)
    seeded = await seed(dsns, world["catalog"], person)
    await delete(world["users"], person)

    async def all_erased() -> bool:
        return all((await erased_in(dsns, person)).values())

    await eventually(all_erased, "erased everywhere", WITHIN)
    stamp = await pg.fetchrow(
        dsns["orders"], "SELECT version FROM orders WHERE customer_id = $1", person
    )

    # a restore of orders, catalog and users to before the erasure: the rows as they were,
    # and the erasure's record gone with them (the real restore: the restore drill,
    # tests/reliability/test_restore_drill.py)
    await pg.execute(
        dsns["orders"],
        "UPDATE orders SET customer_name = 'Ada Lovelace', description = 'the sink leaks',"
        " address = '1 Private Road' WHERE id = $1",
        seeded["order"],
    )
    await pg.execute(
        dsns["catalog"],
        "INSERT INTO provider_services (provider_id, service_id) VALUES ($1, $2)",
        person,
        uuid.UUID(seeded["service"]),
    )
    await pg.execute(
        dsns["users"],
        "UPDATE users SET first_name = 'Ada', email = $2, deleted_at = NULL WHERE id = $1",
        person,
        f"{person.hex}@example.com",
    )
    for db in ("orders", "catalog", "users"):
        await pg.execute(dsns[db], "DELETE FROM erased_users WHERE user_id = $1", person)

    await eventually(all_erased, "orders, catalog and users erased again", WITHIN)
    again = await pg.fetchrow(
        dsns["orders"], "SELECT version FROM orders WHERE customer_id = $1", person
    )
    # applied once more: not twice by the two orders processes, not in a loop
    assert again["version"] == stamp["version"] + 1
    assert [e.user_id for e in await world["ledger"].since(None)] == [person]


async def test_no_entry_no_change(world: dict[str, Any], tmp_path: Path) -> None:
    """The ledger cannot be written (its directory is a file): 503, the person untouched."""
    dsns = world["dsns"]
    person = await make_user(dsns["users"])
    blocked = tmp_path / "storage"
    blocked.mkdir(exist_ok=True)
    (blocked / "erasures").write_text("not a directory")
    admin = auth(uuid.uuid4(), Role.ADMIN)
    resp = await world["users"].delete(f"/v1/users/{person}", headers={**admin, "If-Match": '"1"'})
    assert resp.status == 503, await resp.text()
    assert resp.headers["Retry-After"]
    row = await pg.fetchrow(
        dsns["users"], "SELECT first_name, deleted_at FROM users WHERE id = $1", person
    )
    assert (row["first_name"], row["deleted_at"]) == ("Ada", None)
    (blocked / "erasures").unlink()
    await delete(world["users"], person)
    assert person in {e.user_id for e in await world["ledger"].since(None)}


@pytest.fixture(params=["local", "s3"])
async def ledger(request: Any, tmp_path: Path, moto_url: str) -> AsyncIterator[Ledger]:
    settings = StorageSettings(storage_dir=str(tmp_path))
    if request.param == "s3":
        settings = StorageSettings.model_validate(
            {"s3_bucket": await new_bucket(moto_url), "s3_endpoint_url": moto_url, **S3_KEYS}
        )
    async with AsyncExitStack() as stack:
        yield await open_ledger(stack, settings)


async def test_the_ledger_lists_from_a_time_oldest_first(ledger: Ledger) -> None:
    """What a consumer's round reads: the entries written at or after a time, in time
    order, whatever order they were written in (local directory and S3 alike)."""
    base = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    at = {
        s: Entry(base + timedelta(seconds=s, microseconds=s), uuid.uuid4()) for s in (30, 0, 10, 20)
    }
    for entry in at.values():
        await ledger.record(entry)
    assert await ledger.since(None) == [at[0], at[10], at[20], at[30]]
    assert await ledger.since(at[10].at) == [at[10], at[20], at[30]]
    assert await ledger.since(at[10].at + timedelta(microseconds=1)) == [at[20], at[30]]
    assert await ledger.since(base + timedelta(minutes=1)) == []
