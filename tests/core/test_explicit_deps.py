"""Explicit dependencies: no code sets attributes on a `Hive` or probes it with `getattr`;
what a surface reads of a running feature is a typed property fed by the feature itself
(`hive.dashboard_url` from the dashboard feature's `url`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hyperhive.core.feature import BaseFeature
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths

ROOT = Path(__file__).resolve().parents[2] / "hyperhive"


def _is_hive(node: ast.expr) -> bool:
    """`hive`, `self.hive`, `x.hive`: an expression that names a Hive by convention."""
    return (isinstance(node, ast.Name) and node.id == "hive") or (
        isinstance(node, ast.Attribute) and node.attr == "hive"
    )


def locator_uses(source: str) -> list[str]:
    """`hive.x = ...` (also augmented / annotated) and `getattr(hive, ...)` / `hasattr(hive,
    ...)` / `setattr(hive, ...)` in `source`, as "line: text"."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for t in targets:
            if isinstance(t, ast.Attribute) and _is_hive(t.value):
                found.append(f"{node.lineno}: sets hive.{t.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "hasattr", "setattr"}
            and node.args
            and _is_hive(node.args[0])
        ):
            found.append(f"{node.lineno}: {node.func.id}(hive, ...)")
    return found


def test_nothing_sets_attributes_on_the_hive_or_probes_it() -> None:
    found = {
        str(path.relative_to(ROOT)): uses
        for path in sorted(ROOT.rglob("*.py"))
        if (uses := locator_uses(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_check_sees_each_form() -> None:
    source = (
        "hive.dashboard_url = 'x'\n"
        "self.hive.lifecycle = self\n"
        "hive.count += 1\n"
        "x = getattr(hive, 'lifecycle', None)\n"
        "y = hasattr(self.hive, 'questions')\n"
        "other.url = 'fine'\n"
        "z = getattr(other, 'fine', None)\n"
    )
    assert [u.split(": ", 1)[0] for u in locator_uses(source)] == ["1", "2", "3", "4", "5"]


class _Surface(BaseFeature):
    name = "dashboard"

    def __init__(self) -> None:
        self.served = ""

    @property
    def url(self) -> str:
        return self.served


def test_dashboard_url_is_read_from_the_dashboard_feature(tmp_path: Path) -> None:
    paths = HivePaths(tmp_path / "home")
    assert Hive(paths).dashboard_url == ""  # a hive without a dashboard
    surface = _Surface()
    hive = Hive(paths, features=[surface])
    assert hive.dashboard_url == ""  # not serving yet
    surface.served = "http://127.0.0.1:7000/"
    assert hive.dashboard_url == "http://127.0.0.1:7000/"
    with pytest.raises(AttributeError):
        hive.dashboard_url = "http://elsewhere/"  # type: ignore[misc]
