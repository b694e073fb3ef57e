"""What code generated for psycopg imports besides the package itself: the connection alias, in a
module of its own so that a project without psycopg never imports it."""

from __future__ import annotations

from typing import Any, TypeAlias

import psycopg

PsycoConn: TypeAlias = psycopg.AsyncConnection[Any]
PsycoSyncConn: TypeAlias = psycopg.Connection[Any]  # driver: psycopg-sync
