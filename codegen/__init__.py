"""sqlc process plugin: sqlc's GenerateRequest (JSON) -> typed async Python for asyncpg/aiomysql."""
