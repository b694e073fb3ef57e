"""sqlc process plugin: sqlc's GenerateRequest (protobuf or JSON) -> typed async Python for
asyncpg, psycopg and aiomysql. Installed from its wheel the package is `sqlc_gen_fixup`."""
