"""mutmut, with decorated functions mutated too, and no second clean run (ADR 0017).

mutmut 3.8.1 leaves every decorated function alone, and a route handler is one
(`@routes.post`, `@operation`): here the decorators stay on the trampoline (registered
once) and the original's copy and the mutants are made without them. `@property`-like
decorators, `staticmethod` and `classmethod` keep mutmut's own handling. The clean run
mutmut makes after its stats run repeats it on the same code: it is skipped when this
process collected the stats.

    python -m tools.checks.mutmut_decorated run ...   # `mutmut run ...` with this in place
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import libcst as cst
from libcst.metadata import PositionProvider
from mutmut.mutation import file_mutation
from mutmut.workers import isolation

# decorators whose function mutmut must keep handling its own way: a property's copies
# cannot be plain functions, and classmethod/staticmethod copies keep their decorator
KEPT = {"property", "setter", "getter", "deleter", "cached_property", "classmethod",
        "staticmethod", "overload", "abstractmethod"}  # fmt: skip


def decorator_names(function: cst.FunctionDef) -> set[str]:
    """The last name of each decorator: `routes.post(...)` -> post, `x.setter` -> setter."""
    names = set()
    for decorator in function.decorators:
        node = decorator.decorator
        if isinstance(node, cst.Call):
            node = node.func
        if isinstance(node, cst.Attribute):
            names.add(node.attr.value)
        elif isinstance(node, cst.Name):
            names.add(node.value)
    return names


def plainly_decorated(node: cst.CSTNode) -> bool:
    """A decorated function whose copies can drop the decorators (a handler, say)."""
    return (
        isinstance(node, cst.FunctionDef)
        and bool(node.decorators)
        and not decorator_names(node) & KEPT
    )


def install() -> None:
    """Patch mutmut's mutation of a file (idempotent)."""
    visitor = file_mutation.MutationVisitor
    if getattr(visitor, "_fixup_decorated", False):
        return
    skip: Callable[[Any, cst.CSTNode], bool] = visitor._skip_node_and_children
    arrange = file_mutation.function_trampoline_arrangement

    def skip_node_and_children(self: Any, node: cst.CSTNode) -> bool:
        if not plainly_decorated(node):
            return skip(self, node)
        position = self.get_metadata(PositionProvider, node, None)
        if position and position.start.line in self._ignored_node_lines:  # pragma on it
            self.ignored_functions.add(node.name.value)  # type: ignore[attr-defined]
            return True
        # mutmut's own reasons to skip a function, bar "it is decorated"
        return skip(self, node.with_changes(decorators=[]))

    def function_trampoline_arrangement(
        function: cst.FunctionDef, mutants: Iterable[Any], class_name: str | None
    ) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any], Sequence[str]]:
        declared, nodes, assigned, names = arrange(function, mutants, class_name)
        if plainly_decorated(function):
            trampoline, *copies = nodes
            nodes = [trampoline, *(copy.with_changes(decorators=[]) for copy in copies)]
        return declared, nodes, assigned, names

    visitor._skip_node_and_children = skip_node_and_children  # type: ignore[method-assign]
    file_mutation.function_trampoline_arrangement = function_trampoline_arrangement
    for runner in (isolation.ForkServerRunner, isolation.ForkRunner):
        skip_clean_run_after_stats(runner)
    visitor._fixup_decorated = True  # type: ignore[attr-defined]


def skip_clean_run_after_stats(runner: type[isolation.MutantRunner]) -> None:
    """`run_clean_tests` answers 0 once `collect_stats` has passed in this process."""
    collect, clean = runner.collect_stats, runner.run_clean_tests

    def collect_stats(self: Any, tests: Iterable[str] | None) -> int:
        code = collect(self, tests)
        self._fixup_stats_passed = code == 0
        return code

    def run_clean_tests(self: Any, tests: Iterable[str]) -> int:
        if getattr(self, "_fixup_stats_passed", False):
            return 0
        return clean(self, tests)

    runner.collect_stats = collect_stats  # type: ignore[method-assign]
    runner.run_clean_tests = run_clean_tests  # type: ignore[method-assign]


def main() -> None:
    install()
    from mutmut.__main__ import cli

    sys.argv[0] = "mutmut"
    cli()


if __name__ == "__main__":
    main()
