"""The list of features a default hive runs, in start order. One line per feature."""

from __future__ import annotations

from hyperhive.core.feature import Feature


def default_features() -> list[Feature]:
    return []
