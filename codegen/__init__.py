"""sqlc process plugin: sqlc's GenerateRequest (protobuf or JSON) -> typed Python for
asyncpg, psycopg, aiomysql, sqlite3 and aiosqlite. Installed from its wheel the package is
`sqlc_gen_fixup`."""

# the one place the version is written: the wheel's metadata reads it (pyproject.toml) and
# CHANGELOG.md's newest entry must name it (a test checks both)
__version__ = "0.7.0"
