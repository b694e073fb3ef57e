"""`make new-service` refuses bad input before it writes anything (tools/new_service.py):
each refusal names what is wrong; a good name passes every check.

The good names are never one a recipe of docs/recipes.md has a person create (its
`invoices`), nor a service the tree has: each is the first free one of its candidates, so
these tests pass on a tree where the recipes were followed
(tests/e2e/test_new_service.py runs them there)."""

from __future__ import annotations

import re

import pytest

from lib import registry
from tools import new_service
from tools.new_service import ROOT, ScaffoldError, check_new

RECIPES = ROOT / "docs" / "recipes.md"


def recipe_names() -> set[str]:
    """Every name docs/recipes.md passes to a command (`name=`, `db=`, `svc=`)."""
    return set(re.findall(r"\b(?:name|db|svc)=([a-z]+)\b", RECIPES.read_text()))


def recipe_service() -> str:
    """The service the "Add a service" recipe has a person create."""
    found = re.search(r"`make new-service name=([a-z]+)", RECIPES.read_text())
    assert found, "docs/recipes.md scaffolds no service"
    return found.group(1)


def free(*candidates: str) -> str:
    """The first candidate no recipe names and no service of the tree is (or has files)."""
    taken = recipe_names() | set(registry.BY_NAME) | {s.database for s in registry.MICROSERVICES}
    for name in candidates:
        if name not in taken and not any(
            (ROOT / p).exists() for p in new_service.owned_paths(name)
        ):
            return name
    raise AssertionError(f"every candidate is taken: {candidates}")


@pytest.mark.parametrize(
    ("name", "engine", "message"),
    [
        ("ledger123", "postgresql", "2-20 lowercase letters a-z"),  # module ledger_123.py
        ("Bad", "postgresql", "2-20 lowercase letters a-z"),
        ("x", "postgresql", "2-20 lowercase letters a-z"),
        ("a" * 21, "postgresql", "2-20 lowercase letters a-z"),
        ("ledgers", "oracle", "db='oracle': one of postgresql, mysql"),
        ("users", "postgresql", "in lib/registry.py already"),
        ("orders", "mysql", "in lib/registry.py already"),
        ("order", "postgresql", "a word SQL reserves"),
        ("groups", "postgresql", "a word SQL reserves"),  # its singular: group
        ("models", "postgresql", "a name the codegen reserves"),
        ("lambda", "postgresql", "a Python keyword"),
        ("redis", "postgresql", "would clash with REDIS_SENTINELS"),
        ("point", "postgresql", "proto/point, lib/pb/point exist(s) already"),
    ],
)
def test_bad_input_is_refused_naming_why(name: str, engine: str, message: str) -> None:
    with pytest.raises(ScaffoldError) as refused:
        check_new(name, engine, ROOT)
    assert message in str(refused.value)


GOOD_NAMES = {  # a kind of good name: its candidates, the first free one is checked
    "plural": ("ledgers", "parcels", "coupons", "vouchers"),
    "letters_only": ("zzqledger", "zzqparcel", "zzqcoupon"),
    "short_plural": ("news", "maps", "pens"),
    "two_letters": ("qz", "zq", "xq"),
    "twenty_letters": ("a" * 20, "b" * 20, "c" * 20),
}


@pytest.mark.parametrize("candidates", GOOD_NAMES.values(), ids=GOOD_NAMES.keys())
def test_a_good_name_passes(candidates: tuple[str, ...]) -> None:
    name = free(*candidates)
    check_new(name, "postgresql", ROOT)
    values = new_service.Scaffold(name, "postgresql").values()
    assert values["article"] in (f"a {values['model']}", f"an {values['model']}")


def test_the_recipe_s_service_is_no_good_name_of_these_tests() -> None:
    names = recipe_names()
    assert recipe_service() in names
    assert not names & {free(*candidates) for candidates in GOOD_NAMES.values()}


def test_the_article_fits_the_word() -> None:
    assert new_service.Scaffold("offers", "postgresql").values()["article"] == "an offer"
    assert new_service.Scaffold("ledgers", "mysql").values()["article"] == "a ledger"


def test_the_recipe_s_files_a_person_edits_are_the_service_s_own() -> None:
    """docs/recipes.md "Add a service", step 3: every file it names is one `new-service`
    wrote for the example (so `remove-service` takes it too): nothing outside the service."""
    page = (ROOT / "docs" / "recipes.md").read_text()
    step = page[page.index("3. **Its own behaviour**") : page.index("`make remove-service name=")]
    example = recipe_service()
    named = {p.rstrip("/") for p in re.findall(rf"`([\w./-]*{example}[\w./-]*)`", step)}
    named = {p for p in named if "/" in p}  # paths, not `make` arguments
    assert len(named) >= 6, named
    owned = [str(p) for p in new_service.owned_paths(example)]
    outside = sorted(p for p in named if not any(p == o or p.startswith(f"{o}/") for o in owned))
    assert outside == [], f"the recipe has a person edit outside the service: {outside}"


def test_the_recipe_names_every_file_of_the_service_s_own_behaviour() -> None:
    """The converse: each file the scaffold writes that holds the service's own behaviour
    (not its plumbing: the app factory, the entry point, sqlc's config, a rollback) is
    named in step 3, itself or by its folder, on either engine."""
    page = (ROOT / "docs" / "recipes.md").read_text()
    step = page[page.index("3. **Its own behaviour**") : page.index("`make remove-service name=")]
    plumbing = ("app.py", "__main__.py", "sqlc.yaml")
    for engine in new_service.ENGINES:
        written = new_service.Scaffold(recipe_service(), engine).files().values()
        for path in (p for p in written if p.name not in plumbing):
            names = (f"`{path}`", f"`{path.parent}/`")
            assert any(n in step for n in names), f"{engine}: step 3 does not name {path}"
