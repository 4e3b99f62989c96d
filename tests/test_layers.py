"""The layer contract: imports inside `hyperhive` run one way, and there are no import cycles.

Layers, lowest first (a module may import its own package and any lower layer):
    ground  errors, names, config, agentconfig, clock, paths, aio, httpserver, wire/, ...
    1       client/, runtime/, sim/            (siblings: none imports another)
    2       core/
    3       web/
    4       cli/, bench/, demo, assembly       (entry points: anything)
The sandbox side (`harness/`, `mcptools/`) imports only ground, `client/` and itself; nothing
but the entry points imports the sandbox side. `web/` does not import `runtime/` (sockets are
bound through the ground `netio`).

Every import counts: at module level, inside functions, and under `if TYPE_CHECKING:` for the
layer rule (a type-only upward import still couples the layers). Cycles are looked for between
modules over the imports that run (`TYPE_CHECKING` blocks excluded: they never execute).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "hyperhive"

RANK = {"ground": 0, "client": 1, "runtime": 1, "sim": 1, "core": 2, "web": 3}
ENTRY = {"cli", "bench", "demo", "assembly"}
SANDBOX = {"harness", "mcptools"}
GROUND_PACKAGES = {"wire", "prompts"}

# Violations that exist on main today and are being removed (issue #14). The test fails when
# one of them disappears too, so this list only ever shrinks and stays true.
KNOWN: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    src: str  # module name, e.g. hyperhive.core.hive
    dst: str  # imported module, e.g. hyperhive.web.proxy
    type_only: bool
    line: int


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, src: str | None = None) -> Iterator[Import]:
    """Every hyperhive import in the file at `path` (module `src`, by default from its path)."""
    src = src or module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def walk(node: ast.AST, type_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk_stmt(stmt, True)
                for stmt in child.orelse:
                    yield from walk_stmt(stmt, type_only)
                continue
            yield from walk_stmt(child, type_only)

    def walk_stmt(node: ast.AST, type_only: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hyperhive"):
                    yield Import(src, alias.name, type_only, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = src.split(".") if is_pkg else src.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if mod.startswith("hyperhive"):
                for alias in node.names:
                    sub = f"{mod}.{alias.name}"
                    yield Import(src, sub if _exists(sub) else mod, type_only, node.lineno)
        yield from walk(node, type_only)

    yield from walk(tree, False)


def _exists(mod: str) -> bool:
    p = ROOT.parent / Path(*mod.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def all_imports() -> list[Import]:
    return [imp for path in sorted(ROOT.rglob("*.py")) for imp in imports_of(path)]


def area(mod: str) -> str:
    """The layer area of a module: its sub-package, or `ground` for top-level modules."""
    parts = mod.split(".")
    if len(parts) == 1:
        return "ground"
    if len(parts) == 2:
        name = parts[1]
        if _is_package(name):
            return name
        return name if name in ENTRY else "ground"
    return parts[1] if _is_package(parts[1]) else "ground"


def _is_package(name: str) -> bool:
    return name not in GROUND_PACKAGES and (ROOT / name / "__init__.py").is_file()


def allowed(src: str, dst: str) -> bool:
    a, b = area(src), area(dst)
    if a == b or a in ENTRY:
        return True
    if b in ENTRY:
        return False
    if a in SANDBOX:
        return b in SANDBOX or b in {"ground", "client"}
    if b in SANDBOX:
        return False
    if (a, b) == ("web", "runtime"):
        return False
    if b == "ground":
        return True
    if a == "ground":
        return False
    return RANK[b] < RANK[a]


def violations() -> set[tuple[str, str]]:
    return {(i.src, i.dst) for i in all_imports() if not allowed(i.src, i.dst)}


def test_imports_run_one_way() -> None:
    found = violations()
    new = sorted(found - KNOWN)
    gone = sorted(KNOWN - found)
    assert not new, "upward or sideways imports:\n" + "\n".join(f"  {s} -> {d}" for s, d in new)
    assert not gone, "fixed, remove from KNOWN:\n" + "\n".join(f"  {s} -> {d}" for s, d in gone)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {}
    for imp in all_imports():
        if not imp.type_only and imp.dst != imp.src and not imp.src.startswith(imp.dst + "."):
            edges.setdefault(imp.src, set()).add(imp.dst)
    assert not _cycles(edges), _cycles(edges)


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        ("hyperhive.core.hive", "hyperhive.web.proxy", False),
        ("hyperhive.web.proxy", "hyperhive.core.hive", True),
        ("hyperhive.harness.loop", "hyperhive.core.broker", False),
        ("hyperhive.harness.loop", "hyperhive.client.agent", True),
        ("hyperhive.runtime.bwrap", "hyperhive.sim.server", False),
        ("hyperhive.cli.main", "hyperhive.harness.main", True),
        ("hyperhive.errors", "hyperhive.core.broker", False),
        ("hyperhive.web.proxy", "hyperhive.harness.web", False),
        ("hyperhive.web.agentports", "hyperhive.runtime.select", False),
        ("hyperhive.web.dashboard.server", "hyperhive.netio", True),
    ],
)
def test_the_rule_itself(src: str, dst: str, ok: bool) -> None:
    assert allowed(src, dst) is ok


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from hyperhive.core.hive import Hive\n"
        "def f():\n    from hyperhive.web import proxy\n"
        "    from . import broker\n"
    )
    found = {(i.dst, i.type_only) for i in imports_of(f, "hyperhive.core.probe")}
    assert found == {
        ("hyperhive.core.hive", True),
        ("hyperhive.web.proxy", False),
        ("hyperhive.core.broker", False),
    }
