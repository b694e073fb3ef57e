"""GET /v1/departments?limit=50 as a FastAPI user would write it, under uvicorn (uvloop,
httptools, one worker, no access log): the rivals of bench/http_frameworks.py.

`fastapi-orm` (p1): FastAPI + SQLAlchemy 2 async ORM (a session per request, the usual
`Depends(get_session)`) + pydantic response models.
`fastapi-asyncpg` (p2): FastAPI + raw asyncpg on a pool, the generated query's SQL text,
rows returned as dicts (FastAPI's JSON encoding).
Both answer the service's JSON shape ({"data": [...], "meta": {total, limit, page}}).
Run: python -m bench.http_rivals {fastapi-orm,fastapi-asyncpg} PORT DSN
"""

# no `from __future__ import annotations`: FastAPI resolves the local Depends() at runtime

import datetime
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import uvicorn
from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bench.data_access import DepartmentOrm, sa_url
from services.departments.db.departments import COUNT_DEPARTMENTS as COUNT
from services.departments.db.departments import PLAIN_DEPARTMENTS_PAGE as PAGE


class DepartmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    address: str
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    archived_at: datetime.datetime | None


class Meta(BaseModel):
    total: int
    limit: int
    page: int


class DepartmentList(BaseModel):
    data: list[DepartmentOut]
    meta: Meta


def orm_app(dsn: str) -> FastAPI:
    engine = create_async_engine(sa_url(dsn, "postgresql+asyncpg"), pool_size=10)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    async def get_session() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    @app.get("/v1/departments", response_model=DepartmentList)
    async def list_departments(
        session: Annotated[AsyncSession, Depends(get_session)],
        limit: Annotated[int, Query(ge=1, le=100)] = 100,
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> DepartmentList:
        total = await session.scalar(select(func.count()).select_from(DepartmentOrm))
        rows = await session.scalars(
            select(DepartmentOrm)
            .order_by(DepartmentOrm.name, DepartmentOrm.id)
            .limit(limit)
            .offset((page - 1) * limit)
        )
        return DepartmentList(
            data=[DepartmentOut.model_validate(r) for r in rows],
            meta=Meta(total=total or 0, limit=limit, page=page),
        )

    return app


def asyncpg_app(dsn: str) -> FastAPI:
    pools: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pools["db"] = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
        yield
        await pools["db"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/v1/departments")
    async def list_departments(
        limit: Annotated[int, Query(ge=1, le=100)] = 100,
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> dict[str, Any]:
        async with pools["db"].acquire() as conn:
            total = await conn.fetchval(COUNT)
            rows = await conn.fetch(PAGE, (page - 1) * limit, limit)
        return {
            "data": [dict(r) for r in rows],
            "meta": {"total": total, "limit": limit, "page": page},
        }

    return app


APPS = {"fastapi-orm": orm_app, "fastapi-asyncpg": asyncpg_app}


def main() -> None:
    kind, port, dsn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    uvicorn.run(
        APPS[kind](dsn),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
