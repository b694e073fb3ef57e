"""tools/checks/mutmut_decorated: route handlers (decorated functions) are mutated, and their
decorators run once, on the trampoline only."""

from __future__ import annotations

from mutmut.mutation import file_mutation
from mutmut.mutation.file_mutation import mutate_file_contents

from tools.checks import mutmut_decorated

SOURCE = """
import functools

REGISTERED = []


def register(path):
    def wrap(function):
        REGISTERED.append(path)
        return function
    return wrap


@register("/a")
@functools.lru_cache
def handler(x):
    return x + 1


class Box:
    @property
    def size(self):
        return 1 + 2

    @classmethod
    def make(cls):
        return cls() if 1 > 0 else None
"""


def mutated() -> tuple[str, list[str]]:
    mutmut_decorated.install()
    result = mutate_file_contents("example.py", SOURCE)
    return result.code, list(result.mutant_names)


def test_a_decorated_function_gets_mutants() -> None:
    _, names = mutated()
    assert any(name.startswith("x_handler__mutmut_") for name in names), names


def test_its_decorators_run_once_on_the_trampoline() -> None:
    code, names = mutated()
    handler_mutants = [n for n in names if n.startswith("x_handler__mutmut_")]
    assert code.count('@register("/a")') == 1
    namespace: dict[str, object] = {"__name__": "example"}
    exec(compile(code, "example.py", "exec"), namespace)
    assert namespace["REGISTERED"] == ["/a"]
    assert handler_mutants  # and each is a plain function the trampoline calls
    for name in handler_mutants:
        assert not hasattr(namespace[name], "cache_info")


def test_property_keeps_mutmuts_own_handling() -> None:
    _, names = mutated()
    assert not any("size" in name for name in names), names
    assert any("make" in name for name in names), names  # classmethod: mutmut handles it


def test_install_is_idempotent() -> None:
    mutmut_decorated.install()
    first = file_mutation.function_trampoline_arrangement
    mutmut_decorated.install()
    assert file_mutation.function_trampoline_arrangement is first


def test_the_clean_run_is_skipped_once_stats_passed_in_this_process() -> None:
    from mutmut.workers import isolation

    mutmut_decorated.install()
    for runner_class in (isolation.ForkServerRunner, isolation.ForkRunner):
        runner = object.__new__(runner_class)
        runner._fixup_stats_passed = True  # type: ignore[attr-defined]
        assert runner.run_clean_tests(["tests/unit/x.py::test_y"]) == 0
