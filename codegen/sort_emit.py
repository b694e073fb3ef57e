"""The emitting half of `fixup: sort` (sort_variants.py expands the query): the variants'
plans become one SortedQuery, written as its statements, the table that picks one and one
function (templates/sort.tmpl, with the driver's own `:many` section as its body)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

from .emit import Emitter, Source, _docstring, render
from .errors import CodegenError
from .naming import pascal, snake
from .plan import Field, QueryPlan
from .request import Query
from .sort_sql import AFTER_KEY, AFTER_TIE, unique_columns
from .sort_variants import SortSpec, check_unique
from .typeslock import LockEntry, up_section

SORT = "sort"  # templates/sort.tmpl
KINDS = {
    "str": "text",
    "int": "int",
    "float": "float",
    "Decimal": "decimal",
    "datetime.datetime": "time",
    "datetime.date": "date",
    "UUID": "uuid",
    "bool": "bool",
}
WIDE_INTS = {"int8", "bigint", "bigint unsigned", "int unsigned"}
RESERVED = {"orderby", "sort", "after", AFTER_KEY, AFTER_TIE}


@dataclass
class SortedQuery:
    """One `fixup: sort` query: its spec, the plan its classes and function come from (the
    first variant's, named after the query), and every variant's plan by (key, direction)."""

    spec: SortSpec
    plan: QueryPlan
    variants: dict[tuple[str, str], QueryPlan]

    @property
    def query(self) -> Query:
        return self.plan.query


def group(
    plans: list[QueryPlan],
    sorted_specs: dict[str, SortSpec],
    engine: str,
    schema_files: list[Path],
) -> list[QueryPlan | SortedQuery]:
    """The plans in file order, each sorted query's variants gathered into one SortedQuery.
    A sorted query whose variant was not generated is left out whole (its variant named)."""
    by_variant = {
        spec.variant_name(key.name, d): (spec, key.name, d)
        for spec in sorted_specs.values()
        for key, directions in spec.keys
        for d in directions
    }
    unique: set[tuple[str, str]] = set()
    if any(spec.tie is not None for spec in sorted_specs.values()):
        unique = unique_columns(engine, [up_section(p.read_text()) for p in schema_files])
    out: list[QueryPlan | SortedQuery] = []
    found: dict[str, SortedQuery] = {}
    for plan in plans:
        place = by_variant.get(plan.query.name)
        if place is None:
            out.append(plan)
            continue
        spec, key, direction = place
        where = f"{plan.query.filename}: query {spec.base}"
        if spec.base not in found:
            check_unique(spec, unique, where)
            clash = sorted(RESERVED & {p.name for p in plan.params} - {AFTER_KEY, AFTER_TIE})
            if clash:
                raise CodegenError(f"{where}: a sorted query cannot have a parameter {clash[0]}")
            base = rename(plan, spec.base)
            found[spec.base] = SortedQuery(spec, base, {})
            out.append(found[spec.base])
        found[spec.base].variants[key, direction] = plan
    for sq in found.values():
        expected = {(k.name, d) for k, ds in sq.spec.keys for d in ds}
        if set(sq.variants) != expected:
            missing = sorted(expected - set(sq.variants))
            name = sq.spec.variant_name(*missing[0])
            raise CodegenError(f"query {sq.spec.base}: its variant {name} was not generated")
        for (key, direction), plan in sq.variants.items():
            sq.variants[key, direction] = _check_same(sq, plan)
    return out


def rename(plan: QueryPlan, base: str) -> QueryPlan:
    """The variant's plan under the query's own name (its function, row and page classes)."""
    row = plan.row_class if plan.row_is_model or plan.row_class is None else f"{pascal(base)}Row"
    page = None if plan.page_class is None else f"{pascal(base)}Page"
    return replace(plan, func=snake(base), row_class=row, page_class=page)


def _check_same(sq: SortedQuery, plan: QueryPlan) -> QueryPlan:
    """Every variant returns what the first does (the server typed each one) and binds the
    same arguments in the same order (one function calls each)."""
    if [f.type.annotation for f in plan.row_fields if isinstance(f, Field)] != [
        f.type.annotation for f in sq.plan.row_fields if isinstance(f, Field)
    ]:
        raise CodegenError(f"query {sq.spec.base}: variant {plan.query.name} returns other types")
    if [b.name for b in plan.bind or plan.params] != [
        b.name for b in sq.plan.bind or sq.plan.params
    ]:
        raise CodegenError(f"query {sq.spec.base}: variant {plan.query.name} binds otherwise")
    return plan


def kind(sq: SortedQuery, key: str, lock: dict[str, LockEntry]) -> tuple[str, bool]:
    """A key's value kind (what a cursor holds) and whether it can be NULL."""
    field = next(f for f in sq.plan.row_fields if isinstance(f, Field) and f.name == snake(key))
    annotation = field.type.annotation
    nullable = annotation.endswith("| None")
    bare = annotation.removesuffix(" | None")
    found = KINDS.get(bare, "other")
    if found == "int":
        variant = next(p for (k, _), p in sq.variants.items() if k == key)
        entry = lock.get(variant.query.name)
        position = next(
            (i for i, p in enumerate(variant.query.params) if p.column.name == AFTER_KEY), None
        )
        if entry and position is not None and position < len(entry.params):
            found = "int64" if entry.params[position].lower() in WIDE_INTS else "int"
    return found, nullable


def render_sorted(
    emitter: Emitter, src: Source, sq: SortedQuery, lock: dict[str, LockEntry]
) -> None:
    spec, plan = sq.spec, sq.plan
    const = plan.func.upper()
    for variant in sq.variants.values():
        # the query's own name (what spans and the server's views show), then the variant's
        key, direction = next(k for k, v in sq.variants.items() if v is variant)
        named = (
            f"-- name: {spec.base} :many\n-- {variant.query.name}: by {key} {direction}\n"
            f"{emitter.driver_sql(variant)}"
        )
        src.add("statement", SORT, const=_variant_const(variant), sql=emitter.sql_literal(named))
    key_alias = f"{pascal(spec.base)}Key"
    after_alias = f"{pascal(spec.base)}After"
    fields = {f.name: f for f in plan.row_fields if isinstance(f, Field)}
    after = ""
    if spec.keyset and spec.tie is not None:
        values: list[str] = []
        for sort_key, _ in spec.keys:
            src.use(fields[snake(sort_key.name)].type)
            for part in fields[snake(sort_key.name)].type.annotation.split(" | "):
                if part not in values:
                    values.append(part)
        if "None" in values:
            values.remove("None")
            values.append("None")
        tie_field = fields[snake(spec.tie.name)]
        src.use(tie_field.type)
        after = render(SORT, "after alias", src.imports, name=after_alias,
                       value=" | ".join(values), tie=tie_field.type.annotation)  # fmt: skip
    kinds: list[str] = []
    for sort_key, directions in spec.keys:
        what, nullable = kind(sq, sort_key.name, lock)
        if spec.keyset and what == "other":
            annotation = fields[snake(sort_key.name)].type.annotation
            raise CodegenError(
                f"query {spec.base}: sort key {sort_key.name!r} ({annotation}) cannot be in a "
                f"keyset cursor (text, numbers, times, dates, uuids and booleans can)"
            )
        field = snake(sort_key.name)
        kinds.append(
            f"{sort_key.name!r}: SortKey({field!r}, {what!r}, {nullable}, {directions!r}),"
        )
    tie_kind: str | None = None
    tie: str | None = None
    if spec.tie is not None:
        tie = snake(spec.tie.name)
        tie_kind = KINDS.get(fields[tie].type.annotation, "other")
    variants = "\n".join(
        f"({k!r}, {d!r}): {_variant_const(v)}," for (k, d), v in sq.variants.items()
    )
    keys = ", ".join(repr(k.name) for k, _ in spec.keys)
    src.add("table", SORT, key_alias=key_alias, keys=keys, after_alias=after, const=const,
            variants=variants, sorting_const=f"{const}_SORTING", kinds="\n".join(kinds),
            tie=repr(tie), tie_kind=repr(tie_kind), keyset=str(spec.keyset),
            after_type=after_alias if after else "None")  # fmt: skip
    values_ = emitter.values(src, plan, f"{const}[orderby, sort]")
    body = render(emitter.driver, emitter.section(plan), src.imports, **values_)
    params = [p for p in plan.params if p.name not in (AFTER_KEY, AFTER_TIE)]
    kw = [f"orderby: {key_alias}", 'sort: Literal["asc", "desc"]']
    kw += [f"{p.name}: {p.type.annotation}" for p in params]
    # every sorted function takes `after`, so a list helper calls each one alike: offset
    # paging's is always None
    kw.append(f"after: {after_alias} | None = None" if spec.keyset else "after: None = None")
    result = emitter.result_annotation(plan)
    head = f"{emitter.def_prefix}{plan.func}(conn: {emitter.conn_type}, *, {', '.join(kw)})"
    signature = f"{head} -> {result}:"
    first = next(iter(sq.variants.values()))
    doc = _docstring(first.sql) + "\n\n" + "\n".join(textwrap.wrap(_doc_note(spec), 88))
    unpack = render(SORT, "unpack", src.imports) if spec.keyset else ""
    src.add("function", SORT, signature=signature, doc=doc, unpack=unpack, body=body)


def _variant_const(plan: QueryPlan) -> str:
    return snake(plan.query.name).upper()


def _doc_note(spec: SortSpec) -> str:
    keys = ", ".join(k.name for k, _ in spec.keys)
    text = f"One statement per key and direction (above: the first). Ordered by `orderby` ({keys})"
    text += " in `sort`'s direction"
    if spec.tie is not None:
        text += f", then by {spec.tie.name}"
    if spec.keyset:
        text += "; `after`: the rows after that (key value, tie-breaker) position"
    return text + "."


def by_file(items: list[QueryPlan | SortedQuery]) -> dict[str, list[QueryPlan | SortedQuery]]:
    """The items of each query file (plain and sorted queries), files in name order."""
    groups: dict[str, list[QueryPlan | SortedQuery]] = {}
    for item in items:
        groups.setdefault(item.query.filename, []).append(item)
    return dict(sorted(groups.items()))


def render_file(
    emitter: Emitter,
    filename: str,
    items: list[QueryPlan | SortedQuery],
    lock: dict[str, LockEntry],
) -> str:
    """A query file's module: each item's classes, then its functions (a sorted query's
    variants in its place)."""
    src = Source(f"source: {filename}")
    src.imports |= emitter.base_imports()
    for item in items:
        emitter.render_classes(src, item.plan if isinstance(item, SortedQuery) else item)
    for item in items:
        if isinstance(item, SortedQuery):
            render_sorted(emitter, src, item, lock)
        else:
            emitter.render_function(src, item)
    return src.text()
