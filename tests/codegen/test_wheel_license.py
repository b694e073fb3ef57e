"""The plugin and the reference carry the same licence: codegen/LICENSE (shipped in the
wheel, tests/codegen/test_wheel.py) is the repository's MIT text under the plugin's own
copyright line, so the wheel names no project of ours."""

from __future__ import annotations

from tests.codegen.test_wheel import ROOT


def _without_copyright(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("Copyright")]


def test_the_plugin_carries_the_repository_licence() -> None:
    root, plugin = (ROOT / "LICENSE").read_text(), (ROOT / "codegen" / "LICENSE").read_text()
    assert root.startswith("MIT License\n")
    assert _without_copyright(plugin) == _without_copyright(root)
    assert "Fixup" not in plugin
