"""The wire doc lists every verb a socket speaks (so it cannot silently drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperhive.wire.base import AGENT_VERBS, HOST_VERBS, MANAGER_VERBS

DOC = (Path(__file__).parent.parent / "docs" / "wire.md").read_text()


@pytest.mark.parametrize(
    "verb", sorted({*AGENT_VERBS.names(), *MANAGER_VERBS.names(), *HOST_VERBS.names()})
)
def test_every_verb_is_documented(verb: str) -> None:
    assert f"`{verb}`" in DOC, f"docs/wire.md does not mention the verb `{verb}`"
