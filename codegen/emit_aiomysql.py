"""The aiomysql emitter: the values of templates/aiomysql.tmpl (cursors, PyMySQL
placeholders, slices, executemany)."""

from __future__ import annotations

from .emit import SliceExpanding


class AiomysqlEmitter(SliceExpanding):
    driver = "aiomysql"
    conn_type = "MyConn"
    expander = "expand_slices"
