"""Declared start order (`core/feature.py`) and the default assembly's wiring
(`hyperhive/assembly.py`): features get each other through their constructors."""

from __future__ import annotations

import pytest

from hyperhive.assembly import FEATURES, build_features, build_hive
from hyperhive.core.approvals import ApprovalsFeature
from hyperhive.core.crashwatch import CrashWatch
from hyperhive.core.feature import BaseFeature, start_order
from hyperhive.core.hive import FeatureMissing, Hive
from hyperhive.core.lifecycle import Lifecycle
from hyperhive.errors import ConfigError, NotSupported
from hyperhive.paths import HivePaths


def feat(name: str, *after: str) -> BaseFeature:
    f = BaseFeature()
    f.name = name
    f.after = after
    return f


def names(features: list[BaseFeature]) -> list[str]:
    return [f.name for f in start_order(features)]


def test_start_order_follows_after_and_keeps_list_order_otherwise() -> None:
    assert names([feat("a"), feat("b"), feat("c")]) == ["a", "b", "c"]
    assert names([feat("a", "c"), feat("b"), feat("c")]) == ["c", "a", "b"]
    assert names([feat("a", "b"), feat("b", "c"), feat("c")]) == ["c", "b", "a"]


def test_start_order_refuses_unknown_names_cycles_and_duplicates() -> None:
    with pytest.raises(ConfigError, match="does not run"):
        start_order([feat("a", "nope")])
    with pytest.raises(ConfigError, match="cycle"):
        start_order([feat("a", "b"), feat("b", "a")])
    with pytest.raises(ConfigError, match="two features"):
        start_order([feat("a"), feat("a")])


def test_a_hive_checks_the_order_when_built(paths: HivePaths) -> None:
    with pytest.raises(ConfigError):
        Hive(paths, features=[feat("a", "b")])


def test_the_default_assembly_wires_features_to_each_other() -> None:
    features, lifecycle = build_features()
    by_name = {f.name: f for f in features}
    assert set(by_name) == set(FEATURES)
    assert isinstance(lifecycle, Lifecycle) and by_name["lifecycle"] is lifecycle
    approvals = by_name["approvals"]
    assert isinstance(approvals, ApprovalsFeature)
    assert approvals.lifecycle is lifecycle
    assert approvals.configs is by_name["configs"] is lifecycle.configs
    assert lifecycle.model_sockets is by_name["model_proxy"]
    watch = by_name["crash_watch"]
    assert isinstance(watch, CrashWatch) and watch.lc is lifecycle
    order = [f.name for f in start_order(features)]
    assert order.index("configs") < order.index("approvals")
    assert order.index("model_proxy") < order.index("lifecycle") < order.index("crash_watch")
    assert order[-1] == "dashboard"


def test_leaving_a_feature_out_leaves_out_what_needs_it() -> None:
    features, lifecycle = build_features(without={"lifecycle", "dashboard"})
    by_name = {f.name: f for f in features}
    assert lifecycle is None and "crash_watch" not in by_name
    approvals = by_name["approvals"]
    assert isinstance(approvals, ApprovalsFeature) and approvals.lifecycle is None
    with pytest.raises(ValueError, match="no such features"):
        build_features(without={"nope"})


def test_a_missing_feature_reads_as_absent(paths: HivePaths) -> None:
    bare = Hive(paths)
    assert getattr(bare, "lifecycle", None) is None
    with pytest.raises(FeatureMissing) as err:
        bare.feature("approvals")
    assert isinstance(err.value, NotSupported)
    assert build_hive(paths).lifecycle.name == "lifecycle"
