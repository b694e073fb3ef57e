"""The security advisories we know of for what tools/deploy/images.py pins, and the release that
fixed each: tests/unit/test_images.py fails when a pin is older than a fix of its line.

A row's `fixed_in` names the first fixed release of each maintained line (major.minor) the
fix shipped in. A pin passes when its line has a fixed release and the pin is at least
that, or when its line is newer than every listed line (the fix is in it from the start);
a pin on an older line, or on a listed line below its fix, fails. Every pin of
tools/deploy/images.py has a row (an empty `advisories` when none is known), so a new pin is
looked up once. Add a row when an advisory is published: docs/operations.md, "Supply
chain".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fix:
    component: str  # the tools/deploy/images.py name without its _VERSION suffix
    fixed_in: tuple[str, ...]  # the first fixed release of each line
    advisories: tuple[str, ...]  # ids and links


FIXES = (
    Fix(
        "NGINX",
        ("1.30.7",),
        (
            "ten CVEs fixed in 1.30.7 (2026-11-18) that 1.30.0-1.30.6 carry",
            "https://nginx.org/en/security_advisories.html",
        ),
    ),
    Fix(
        "ENVOY_GATEWAY",
        ("1.7.4", "1.8.1"),
        (
            "GHSA-22xc-xg2r-9j7v",
            "GHSA-wcrf-9vrr-854f",
            "GHSA-8fv2-88gg-hm7q",
            "GHSA-m2v6-2jmh-4c68",
            "GHSA-h7pq-86h8-rp5x",
            "GHSA-fcrp-7gc2-93g7",
            "GHSA-cxpq-8v7q-cg56",
            "CVE-2026-47774 (Envoy 1.37.3)",
            "https://github.com/envoyproxy/gateway/blob/main/release-notes/v1.7.4.yaml",
        ),
    ),
    Fix("ALERTMANAGER", ("0.25.1",), ("CVE-2023-40577 (stored XSS in its UI)",)),
    Fix("PROMETHEUS", ("2.26.1", "2.27.1"), ("CVE-2021-29622 (open redirect under /new)",)),
    Fix("PGBACKREST", ("2.45",), ()),
)


def release(version: str) -> tuple[int, ...]:
    """ "1.30.7" -> (1, 30, 7)."""
    return tuple(int(part) for part in version.split("."))


def unfixed(component: str, pin: str) -> Fix | None:
    """The row whose fix `pin` lacks, or None."""
    for fix in FIXES:
        if fix.component != component:
            continue
        pinned = release(pin)
        lines = {release(v)[:2]: release(v) for v in fix.fixed_in}
        if pinned[:2] in lines:
            return None if pinned >= lines[pinned[:2]] else fix
        return None if pinned[:2] > max(lines) else fix
    raise KeyError(f"{component}: no row in tools/deploy/advisories.py")
