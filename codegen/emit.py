"""What every driver shares: models.py, row classes, signatures, conversions, the values
their templates take (templates/module.tmpl and templates/<driver>.tmpl hold the shape).
"""

from __future__ import annotations

from .naming import RUNTIME, enum_members, model_name, snake
from .plan import Embed, Field, QueryPlan
from .pytypes import PyType, TypeMapper, enum_lookup
from .request import Column, Request
from .template import load

MODULE = "module"  # templates/module.tmpl: the file, the classes, the query and its function


def render(template: str, section: str, into: set[str], **values: str) -> str:
    """A section of templates/<template>.tmpl filled in; its imports are added `into`."""
    return load(template)[section].render(into, **values)


class Source:
    """A module being written: its import lines and its parts, put in templates/module.tmpl's
    `file` when done."""

    def __init__(self, note: str) -> None:
        self.note = note
        self.imports: set[str] = set()
        self.parts: list[str] = []

    def use(self, py: PyType) -> None:
        self.imports |= py.imports

    def add(self, section: str, template: str = MODULE, **values: str) -> None:
        self.parts.append(render(template, section, self.imports, **values))

    def text(self, *, skip_prefix: str = "\0") -> str:
        imports = sorted(i for i in self.imports if not i.startswith(skip_prefix))
        body = "\n".join(self.parts)
        return render(MODULE, "file", set(), note=self.note, imports="\n".join(imports), body=body)


MODEL_TYPES = ("dataclass", "msgspec", "attrs", "pydantic")  # the `model_type` option's values


def construct(cls: str, args: list[str], names: list[str], model_type: str) -> str:
    """`cls` built from `args`: positionally, or for pydantic by name (its models take no
    positional arguments). Pydantic validates then: its `model_construct`, which skips
    validation, costs twice as much per row (bench/codegen_model_types.py)."""
    return f"{cls}({_args(args, names, model_type)})"


def _args(args: list[str], names: list[str], model_type: str) -> str:
    if model_type == "pydantic":
        return ", ".join(f"{n}={a}" for n, a in zip(names, args, strict=True))
    return ", ".join(args)


def class_head(src: Source, name: str, model_type: str) -> str:
    """The lines opening a row class: a dataclass, or a msgspec Struct (faster to build and
    to encode; the same positional construction and annotations)."""
    return render(MODULE, f"head {model_type}", src.imports, name=name)


def field_lines(src: Source, fields: list[Field]) -> str:
    for f in fields:
        src.use(f.type)
    return "\n".join(f"{f.name}: {f.type.annotation}" for f in fields)


def render_models(
    request: Request,
    mapper: TypeMapper,
    planner_fields: dict[str, list[Field]],
    model_type: str = "dataclass",
    exact_names: bool = False,
) -> str:
    """models.py: enums, composite types and a class per table of `planner_fields`."""
    src = Source("models: SQL enums and one row class per table")
    for enum in sorted(request.enums.values(), key=lambda e: e.name):
        if enum.name in mapper.set_types:
            continue
        cls = mapper.enum_class(enum.name)
        members = zip(enum_members(enum.values), enum.values, strict=True)
        lines = "\n".join(f"{name} = {v!r}" for name, v in members) or "pass"
        src.add("enum", name=cls, members=lines, lookup=enum_lookup(cls))
    for name, (cls, attributes) in sorted(mapper.composites.items()):
        fields = [
            Field(snake(attr), mapper.column(_attribute(attr, type_name), f"composite {name}"))
            for attr, type_name in attributes
        ]
        values = [_value(f"record[{i}]", f.type) for i, f in enumerate(fields)]
        head = class_head(src, cls, model_type)
        src.add("composite", head=head, name=cls, type=name, fields=field_lines(src, fields),
                values=_args(values, [f.name for f in fields], model_type))  # fmt: skip
    for table_name in sorted(planner_fields):
        head = class_head(src, model_name(table_name, exact_names), model_type)
        lines = field_lines(src, planner_fields[table_name])
        src.add("table", head=head, table=table_name, fields=lines)
    return src.text(skip_prefix="from .models import")


def _attribute(name: str, type_name: str) -> Column:
    """A composite type's attribute as a nullable column (attributes have no NOT NULL)."""
    is_array = type_name.endswith("[]")
    element = {"name": type_name.removesuffix("[]")}
    raw = {"name": name, "original_name": name, "is_array": is_array, "type": element}
    return Column.parse({**raw, "array_dims": int(is_array)})


def _convert(expr: str, py: PyType, template: str | None) -> str:
    """`expr` through `template` (None stays None)."""
    if template is None:
        return expr
    converted = template.format(expr)
    if py.annotation.endswith("| None"):
        return f"(None if {expr} is None else {converted})"
    return converted


def _value(expr: str, py: PyType) -> str:
    """A column value: a NULL stays None even where the annotation says it cannot be (a
    NULL the nullability rules missed must not lose the whole result to `Mood(None)`)."""
    if py.decode is None or py.driver_type is None or py.annotation.endswith("| None"):
        return _convert(expr, py, py.decode)
    return f"({py.decode.format(expr)} if isinstance({expr}, {py.driver_type}) else {expr})"


def _param(expr: str, py: PyType) -> str:
    return _convert(expr, py, py.encode)


SLICED_TAIL = 3  # this many trailing undecoded columns or more: `*row[a:]`


def row_builder(plan: QueryPlan, var: str, models_prefix: str, model_type: str = "") -> str:
    """An expression building the result from the driver's row `var` (after the columns
    `fixup: once` reads once). The trailing columns that need no decoding, SLICED_TAIL or
    more, pass as one slice (`*row[6:]`: one C call where a subscript per column costs a
    bytecode round and a lookup each); the others are written out, so that mypy still
    checks the call's arity (a slice before a positional argument defeats it)."""
    index = len(plan.once)
    if plan.scalar is not None:
        return _value(f"{var}[{index}]", plan.scalar)
    prefix = models_prefix if plan.row_is_model else ""
    fields = plan.row_fields
    named = model_type == "pydantic"  # by name: no positional or sliced form
    if not named and all(isinstance(f, Field) and f.type.decode is None for f in fields):
        return f"{prefix}{plan.row_class}(*{var}{f'[{index}:]' if index else ''})"
    args: list[str] = []
    for f in fields:
        if isinstance(f, Embed):
            inner = []
            for sub in f.fields:
                inner.append(_value(f"{var}[{index}]", sub.type))
                index += 1
            names = [sub.name for sub in f.fields]
            model = construct(f"{models_prefix}{f.cls}", inner, names, model_type)
            if f.missing_at is not None:  # an outer join found no row: None
                model = f"None if {inner[f.missing_at]} is None else {model}"
            args.append(model)
        else:
            args.append(_value(f"{var}[{index}]", f.type))
            index += 1
    tail = 0  # the trailing columns passed as the driver returns them
    while not named and tail < len(args) and args[-1 - tail] == f"{var}[{index - 1 - tail}]":
        tail += 1
    if tail >= SLICED_TAIL:
        args[-tail:] = [f"*{var}[{index - tail}:]"]
    return construct(f"{prefix}{plan.row_class}", args, [f.name for f in fields], model_type)


def embed_annotation(embed: Embed) -> str:
    return f"models.{embed.cls}" + (" | None" if embed.missing_at is not None else "")


def _docstring(sql: str) -> str:
    body = sql.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return "\n".join(line.rstrip() for line in body.splitlines())


class Emitter:
    """The driver-independent part: the values a driver's template (templates/<driver>.tmpl)
    fills in; a subclass adds the driver's own values."""

    driver = ""  # its template: templates/<driver>.tmpl
    conn_type = ""
    conn_module = ""  # where in the runtime package conn_type is: "" or ".<module>"
    def_prefix = "async def "  # a sync driver's functions are plain `def`s
    stream_type = "AsyncGenerator[{}, None]"  # the row-by-row form's return type (abc's)

    def __init__(self, mapper: TypeMapper, model_type: str = "dataclass") -> None:
        self.mapper = mapper
        self.model_type = model_type

    @staticmethod
    def sql_literal(sql: str) -> str:
        if '"""' in sql or "\\" in sql:
            return repr(sql)
        return '"""\n' + sql + '\n"""'

    def base_imports(self) -> set[str]:
        return {f"from {RUNTIME}{self.conn_module} import {self.conn_type}"}

    def driver_sql(self, plan: QueryPlan) -> str:
        """The SQL as the driver takes it."""
        return plan.sql

    def render_classes(self, src: Source, plan: QueryPlan) -> None:
        for param in plan.params:
            src.use(param.type)
        if any(isinstance(f, Embed) for f in plan.row_fields) or plan.row_is_model:
            src.imports.add("from . import models")
        for f in plan.row_fields:
            for sub in f.fields if isinstance(f, Embed) else [f]:
                src.use(sub.type)
        classes: list[tuple[str, list[Field | Embed]]] = []
        if plan.row_class and not plan.row_is_model:
            classes.append((plan.row_class, plan.row_fields))
        if plan.params_class:
            classes.append((plan.params_class, list(plan.params)))
        for name, fields in classes:
            head = class_head(src, name, self.model_type)
            lines = [
                f"{f.name}: {embed_annotation(f) if isinstance(f, Embed) else f.type.annotation}"
                for f in fields
            ]
            src.add("class", head=head, fields="\n".join(lines) or "pass")
        if plan.page_class:
            head = class_head(src, plan.page_class, self.model_type)
            once = ", ".join(f.name for f in plan.once)
            once_fields = field_lines(src, list(plan.once))
            src.add("page class", head=head, once=once, fields=once_fields, row=self.row_type(plan))

    def signature(self, plan: QueryPlan, result: str) -> str:
        if plan.params_class:
            args = f"items: Iterable[{plan.params_class}]"
        else:
            kw = ", ".join(f"{p.name}: {p.type.annotation}" for p in plan.params)
            args = f"*, {kw}" if kw else ""
        sep = ", " if args else ""
        return f"{self.def_prefix}{plan.func}(conn: {self.conn_type}{sep}{args}) -> {result}:"

    def result_annotation(self, plan: QueryPlan) -> str:
        row = self.row_type(plan)
        maybe = row if row in ("None", "Any") or row.endswith("| None") else f"{row} | None"
        if plan.page_class:
            return f"{plan.page_class} | None"
        return {
            ":one": row if plan.one_row else maybe,
            ":many": f"list[{row}]",
            ":exec": "None",
            ":execrows": "int",
            ":execresult": "ExecResult",
            ":execlastid": "int",
            ":copyfrom": "int",
            ":batchexec": "None",
            ":batchone": f"list[{maybe}]",
            ":batchmany": f"list[list[{row}]]",
        }[plan.query.cmd]

    def row_type(self, plan: QueryPlan) -> str:
        if plan.scalar is not None:
            return plan.scalar.annotation
        return f"models.{plan.row_class}" if plan.row_is_model else str(plan.row_class)

    def args(self, plan: QueryPlan, holder: str = "") -> list[str]:
        by_name = {p.name: p for p in plan.params}  # a parameter bound twice: its one type
        return [_param(f"{holder}{b.name}", by_name[b.name].type) for b in plan.bind or plan.params]

    def section(self, plan: QueryPlan) -> str:
        """The driver template's section for the query's command."""
        cmd, sections = plan.query.cmd, load(self.driver)
        void = plan.scalar is not None and plan.scalar.annotation == "None"
        if cmd == ":one" and void and f"{cmd} void" in sections:
            return f"{cmd} void"  # a void result: nothing to return
        if cmd == ":one" and plan.one_row:
            return f"{cmd} row"  # always one row: no None to return
        return f"{cmd} page" if plan.page_class and cmd == ":many" else cmd

    def values(self, src: Source, plan: QueryPlan, const: str = "") -> dict[str, str]:
        """The values the driver's sections use: common ones and the driver's own; `const`
        is the statement's expression (the query's constant unless given)."""
        build = row_builder(plan, "row", "models.", self.model_type)
        once = [_value(f"first[{i}]", f.type) for i, f in enumerate(plan.once)]
        page = ""
        if plan.page_class:
            page = render(MODULE, "page", src.imports, page_class=plan.page_class,
                          once=_args(once, [f.name for f in plan.once], self.model_type),
                          rows_kw="rows=" if self.model_type == "pydantic" else "",
                          build=build)  # fmt: skip
        return {
            "const": const or plan.func.upper(),
            "func": plan.func,
            "build": build,
            "page": page,
            "result": self.result_annotation(plan),
        }

    def render_function(self, src: Source, plan: QueryPlan) -> None:
        cmd = plan.query.cmd
        if plan.params_class:
            src.imports.add("from collections.abc import Iterable")
        values = self.values(src, plan)
        body = render(self.driver, self.section(plan), src.imports, **values)
        # sqlc's name comment, as its Go generator writes it: the query's name reaches the
        # server's views (pg_stat_activity, the slow log) and a tracer's query spans
        named = f"-- name: {plan.query.name} {cmd}\n{self.driver_sql(plan)}"
        src.add("query", const=values["const"], sql=self.sql_literal(named),
                signature=self.signature(plan, self.result_annotation(plan)),
                doc=_docstring(plan.sql), body=body)  # fmt: skip
        if cmd == ":many" and not plan.page_class:  # a page is read whole
            sig = self.signature(plan, self.stream_type.format(self.row_type(plan)))
            sig = sig.replace(f"def {plan.func}(", f"def iter_{plan.func}(", 1)
            src.imports.add(f"from collections.abc import {self.stream_type.split('[')[0]}")
            src.add("stream", self.driver, signature=sig, **values)


class SliceExpanding(Emitter):
    """A driver whose placeholders take one value each (`%s`, `?`): a sqlc.slice's is
    expanded at run time by the runtime's `expander`; its template's $call and $item_call
    are execute()'s arguments, $item_args an item's tuple."""

    expander = ""

    def call(self, src: Source, const: str, plan: QueryPlan, args: list[str]) -> str:
        """execute()'s arguments: the SQL and its values (a slice's placeholder expanded)."""
        if "/*SLICE:" in plan.sql:
            src.imports.add(f"from {RUNTIME} import {self.expander}")
            return f"*{self.expander}({const}, {as_tuple(args)})"
        return f"{const}, {as_tuple(args)}"

    def values(self, src: Source, plan: QueryPlan, const: str = "") -> dict[str, str]:
        common = super().values(src, plan, const)
        return {
            **common,
            "call": self.call(src, common["const"], plan, self.args(plan)),
            "item_call": self.call(src, common["const"], plan, self.args(plan, "item.")),
            "item_args": as_tuple(self.args(plan, "item.")),
        }


def module_name(filename: str) -> str:
    return snake(filename.rsplit("/", 1)[-1].removesuffix(".sql"))


def as_tuple(items: list[str]) -> str:
    if not items:
        return "()"
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
