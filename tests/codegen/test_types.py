"""Types better than sqlc's inference: read straight from the generated annotations."""

from __future__ import annotations

import dataclasses
import inspect
import typing

from services.users.db import users
from tests.codegen.golden.mysql import gadgets
from tests.codegen.golden.pg import authors


def hints(cls: type) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(cls)}


def test_postgres_statistics_query_types() -> None:
    assert hints(authors.AuthorStatsRow) == {
        "total": "int",
        "min_age": "int | None",
        "max_age": "int | None",
        "avg_age": "Decimal | None",
        "min_salary": "Decimal | None",
        "max_salary": "Decimal | None",
        "avg_salary": "Decimal | None",
        "max_age_or_zero": "int",
        "avg_salary_or_zero": "Decimal",
    }


def test_users_service_statistics_types() -> None:
    """The real users query: round(avg(...), 2) stays nullable (strict functions)."""
    assert hints(users.UserStatisticsRow) == {
        "total": "int",
        "min_age": "int | None",
        "max_age": "int | None",
        "avg_age": "Decimal | None",
        "min_salary": "Decimal | None",
        "max_salary": "Decimal | None",
        "avg_salary": "Decimal | None",
    }


def test_mysql_statistics_query_types() -> None:
    assert hints(gadgets.GadgetStatsRow) == {
        "total": "int",
        "min_qty": "int | None",
        "max_qty": "int | None",
        "avg_qty": "Decimal | None",
        "min_price": "Decimal | None",
        "max_price": "Decimal | None",
        "avg_price": "Decimal | None",
        "max_qty_or_zero": "Decimal",  # MariaDB: COALESCE(INT UNSIGNED, 0) is DECIMAL
    }


def test_left_join_columns_are_nullable() -> None:
    assert hints(authors.AuthorsWithBooksRow) == {
        "id": "int",
        "name": "str",
        "title": "str | None",
        "price": "Decimal | None",
    }
    assert hints(gadgets.GadgetsWithPartsRow) == {"id": "int", "name": "str", "label": "str | None"}


def test_no_any_in_generated_signatures() -> None:
    for module in (authors, gadgets):
        for name, func in inspect.getmembers(module, inspect.iscoroutinefunction):
            signature = str(inspect.signature(func))
            assert "Any" not in signature, f"{module.__name__}.{name}{signature}"


def test_commands_have_their_return_types() -> None:
    def ret(func: typing.Callable[..., typing.Any]) -> str:
        return str(inspect.signature(func).return_annotation)

    assert ret(authors.get_author) == "models.Author | None"
    assert ret(authors.list_authors_by_ids) == "list[models.Author]"
    assert ret(authors.rename_author) == "None"
    assert ret(authors.set_bio) == "int"
    assert ret(authors.delete_author) == "ExecResult"
    assert ret(authors.create_author_id) == "int"
    assert ret(authors.copy_authors) == "int"
    assert ret(authors.bump_ages) == "None"
    assert ret(authors.get_authors_batch) == "list[GetAuthorsBatchRow | None]"
    assert ret(authors.books_of_authors) == "list[list[BooksOfAuthorsRow]]"
    assert ret(authors.count_authors) == "int"  # an aggregate without GROUP BY: one row
    assert ret(authors.author_stats) == "AuthorStatsRow"
    assert ret(gadgets.list_gadgets_by_ids).startswith("list[models.Gadget]")


def test_nullable_params_are_optional_and_keyword_only() -> None:
    params = inspect.signature(authors.create_author).parameters
    assert params["bio"].annotation == "str | None"
    assert params["name"].annotation == "str"
    assert params["mood"].annotation == "Mood"
    assert params["tags"].annotation == "list[str]"
    assert all(p.kind is p.KEYWORD_ONLY for n, p in params.items() if n != "conn")
    slice_param = inspect.signature(gadgets.list_gadgets_by_ids).parameters["ids"]
    assert slice_param.annotation == "list[int]"
