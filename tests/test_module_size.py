"""Small modules: no Python module under `hyperhive/` is over 600 lines (CONVENTIONS.md).

A module that grows past it is split along its ideas, not trimmed of docstrings.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "hyperhive"
MAX_LINES = 600


def oversized(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """{path relative to `root`: line count} of every `.py` file under `root` over `limit`."""
    out: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            out[str(path.relative_to(root))] = lines
    return out


def test_no_module_is_over_600_lines() -> None:
    assert oversized(ROOT) == {}, "split these modules along their ideas"


def test_the_check_sees_a_long_module_anywhere(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "deep").mkdir(parents=True)
    (tmp_path / "pkg" / "deep" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "pkg" / "fits.py").write_text("x = 1\n" * MAX_LINES)
    assert oversized(tmp_path) == {"pkg/deep/long.py": MAX_LINES + 1}
