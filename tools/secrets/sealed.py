"""Stored values sealed under ENCRYPTION_KEY's keyring (lib/crypto.py, ADR 0036, ADR 0046):
how many each key id seals, and sealing them again under the current key (`make rotate
secret=encryption step=reencrypt`). The columns encrypted at rest, each bound to its
row's user id: personal id numbers (`provider_details`) and TOTP secrets (`totp_factors`,
ADR 0054)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag
from psycopg import sql

from lib.crypto import FieldCipher, prefix, sealed_kid
from tools.local.dbadmin import psycopg_dsn
from tools.local.locks import database_lock

LOCK = "reencrypt"
NOT_SEALED = "none"  # what `counts` says of a value that is not an envelope (to migrate)
SEALED = (  # (table, its sealed column): each row keyed by user_id, sealed bound to it
    ("provider_details", "personal_id_encrypted"),
    ("totp_factors", "secret_encrypted"),
)


def counts(dsn: str) -> Counter[str]:
    """How many sealed values (of every sealed column) each key id seals."""
    found: Counter[str] = Counter()
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        for table, column in SEALED:
            rows = conn.execute(
                sql.SQL("SELECT substring({} FROM 1 FOR 16) FROM {}").format(
                    sql.Identifier(column), sql.Identifier(table)
                )
            ).fetchall()
            found.update(sealed_kid(bytes(row[0])) or NOT_SEALED for row in rows)
    return found


def reencrypt(dsn: str, cipher: FieldCipher, *, batch: int, max_batches: int | None) -> int:
    """Re-seal every sealed value not under the current key, column by column, `batch`
    rows a transaction, in user id order. Rows already on the current key are never
    selected, so a run that was killed resumes where it stopped and a second run changes
    nothing. Each batch locks its rows (FOR UPDATE) and a value is rewritten only with
    what decrypts, so the service reads every value throughout. Returns how many values
    were re-sealed (`max_batches` bounds each column's batches)."""
    done = 0
    with database_lock(dsn, LOCK), psycopg.connect(psycopg_dsn(dsn)) as conn:
        for table, column in SEALED:
            done += _reencrypt(conn, cipher, table, column, batch, max_batches)
    return done


def _reencrypt(
    conn: psycopg.Connection[Any],
    cipher: FieldCipher,
    table: str,
    column: str,
    batch: int,
    max_batches: int | None,
) -> int:
    current = prefix(cipher.keys.current.kid)
    names = {"t": sql.Identifier(table), "c": sql.Identifier(column)}
    select = sql.SQL(
        "SELECT user_id, {c} FROM {t}"
        " WHERE (%(after)s::uuid IS NULL OR user_id > %(after)s::uuid)"
        "   AND substring({c} FROM 1 FOR %(n)s) <> %(prefix)s"
        " ORDER BY user_id LIMIT %(batch)s FOR UPDATE"
    ).format(**names)
    update = sql.SQL("UPDATE {t} SET {c} = %s WHERE user_id = %s").format(**names)
    done, batches, after = 0, 0, None
    while max_batches is None or batches < max_batches:
        with conn.transaction():
            rows = conn.execute(
                select, {"after": after, "n": len(current), "prefix": current, "batch": batch}
            ).fetchall()
            for user_id, value in rows:
                try:
                    plain = cipher.decrypt(bytes(value), associated=user_id.bytes)
                except InvalidTag:  # this batch rolls back; nothing is half-done
                    raise SystemExit(
                        f"{table} {user_id}: no key of the ring opens it "
                        f"(key id {sealed_kid(bytes(value)) or NOT_SEALED}); stopped"
                    ) from None
                conn.execute(update, (cipher.encrypt(plain, associated=user_id.bytes), user_id))
        if not rows:
            break
        done, batches, after = done + len(rows), batches + 1, rows[-1][0]
    return done
