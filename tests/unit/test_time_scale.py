"""FIXUP_TIME_SCALE (tools/time_scale.py): one factor for every bound the tests wait under."""

from __future__ import annotations

import pytest

from tools import time_scale
from tools.checks import closed_checkout


def test_without_the_variable_a_bound_is_the_default_factor_times_the_measured_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(time_scale.VARIABLE, raising=False)
    assert time_scale.time_scale() == time_scale.DEFAULT == 3.0
    assert time_scale.scaled(20.0) == 60.0


def test_the_variable_sets_the_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(time_scale.VARIABLE, "1")
    assert time_scale.scaled(90.0) == 90.0
    monkeypatch.setenv(time_scale.VARIABLE, " 2.5 ")
    assert time_scale.scaled(10.0) == 25.0


@pytest.mark.parametrize("value", ["0.5", "0", "-2", "nan", "fast"])
def test_a_factor_under_one_or_not_a_number_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(time_scale.VARIABLE, value)
    with pytest.raises(ValueError, match=f"FIXUP_TIME_SCALE='{value}'"):
        time_scale.scaled(1.0)


def test_a_test_without_a_timeout_mark_gets_pytest_timeouts_bound_scaled(
    request: pytest.FixtureRequest,
) -> None:
    given = request.config.getoption("timeout", None)
    measured = float(request.config.getini("timeout") if given is None else given)
    mark = request.node.get_closest_marker("timeout")
    assert mark is not None
    assert mark.args == (time_scale.scaled(measured),)


def test_the_closed_checkout_names_each_test_that_broke() -> None:
    out = "\n".join(
        [
            "..F",
            "FAILED tests/a.py::test_x - AssertionError: no",
            "ERROR tests/b.py::test_y - StartError: the postgres user cannot reach ...",
            "1 failed, 2 passed, 1 error in 3.00s",
        ]
    )
    assert closed_checkout.failed_tests(out) == out.splitlines()[1:3]
