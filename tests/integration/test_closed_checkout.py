"""The sample of server-starting tests run from a copy of the checkout under a 0700
directory (tools/checks/closed_checkout.py), while the rest of the suite keeps the machine
busy: the suite's own load stands in for `make test-closed-checkout`'s CPU burners."""

from __future__ import annotations

import re

import pytest

from tests.servers import Servers
from tools.checks import closed_checkout
from tools.time_scale import scaled

# the suite's four workers load two cores more than the two burners BOUND was measured
# beside (the sample took 124 s and 241 s after make test with them, under 40 s quiet)
BOUND = closed_checkout.BOUND * 2


@pytest.mark.timeout(BOUND * 2 + scaled(60.0))  # its run, then its cleanup
def test_the_sample_passes_from_a_closed_checkout(
    servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    code = closed_checkout.run(keep=False, burners=0, bound=BOUND)
    out = capsys.readouterr().out
    assert code == 0, out
    summary = out.splitlines()[-1]  # pytest's last line: "N passed in ...", nothing skipped
    assert re.fullmatch(r"closed checkout: \d+ passed in .*", summary), out
