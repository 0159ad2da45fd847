"""No module imports another module's private name (`from x import _y`): what crosses a
module boundary is public and named so. The layering itself is checked by `lint-imports`
(pyproject.toml, [tool.importlinter]), which the test command runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "routing", "channels", "storage")


def _private_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            top = node.module.split(".")[0]
            if top not in PACKAGES:
                continue  # a library's private name is the library's business
            found += [
                f"{path.relative_to(root)}:{node.lineno} {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return found


def _modules() -> list[Path]:
    return sorted(
        p
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if "migrations" not in p.parts
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_crosses_a_module(path: Path) -> None:
    assert _private_imports(path) == []


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from routing.outbound.queue import _hidden, pick_channel\nfrom x import _y\n",
        encoding="utf-8",
    )
    assert _private_imports(module, tmp_path) == ["probe.py:1 routing.outbound.queue._hidden"]
