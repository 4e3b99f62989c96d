"""Agent names are the one gate against path traversal."""

from __future__ import annotations

import pytest

from hyperhive.errors import InvalidName
from hyperhive.names import validate_name, validate_new_name
from hyperhive.paths import HivePaths


@pytest.mark.parametrize("name", ["a", "alice", "x-1", "a-", "a--b", "a" * 63, "0"])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-",
        "-x",
        "--help",
        "-rf",
        "alice\n",
        "A",
        "../x",
        "a/b",
        ".",
        "..",
        "a" * 64,
        "a b",
        "é",
        None,
        3,
    ],
)
def test_bad_names(name: object) -> None:
    with pytest.raises(InvalidName):
        validate_name(name)


def test_paths_refuse_traversal() -> None:
    p = HivePaths.resolve("/tmp/hive")
    with pytest.raises(InvalidName):
        p.state_dir("../etc")
    with pytest.raises(InvalidName):
        p.agent_sock("..")
    assert p.agent_sock("alice").as_posix() == "/tmp/hive/run/agents/alice/hive.sock"


@pytest.mark.parametrize("name", ["operator", "system"])
def test_reserved_names(name: str) -> None:
    with pytest.raises(InvalidName, match="reserved"):
        validate_new_name(name)
