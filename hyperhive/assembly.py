"""The composition root: the one place that builds a daemon's features, hands each the others
it needs (as the narrow protocols its constructor asks for), and gives them to a `Hive`.

Used by every entry point that runs a daemon — `hive serve`, `hive demo`, the benchmarks — and
by the tests' daemon helpers, so they all run the same assembly. It sits at the entry-point
layer (it imports core and web); nothing below it imports it.

Who depends on whom (constructor arguments; each also declares `after`, its start order):

    model_proxy, threads, questions, reminders, permissions   (none)
    budgets      ← questions (asks the operator when a breaker trips; may be None)
    configs      ← lifecycle.repo_owner (bound late: the two refer to each other)
    lifecycle    ← configs, model_proxy
    approvals    ← configs, lifecycle
    crash_watch  ← lifecycle
    agent_ports, dashboard                              (none; the dashboard serves last)
    search                                              (none; the hive's db and hub)
    nodes                                               (none; lifecycle ← nodes.owns)
    peer         ← nodes
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from hyperhive.clock import Clock
from hyperhive.config import FREE_PORT_LISTEN, HiveConfig
from hyperhive.core.approvals import ApprovalsFeature
from hyperhive.core.budgets import BudgetsFeature
from hyperhive.core.configs import ConfigRepos
from hyperhive.core.crashwatch import CrashWatch
from hyperhive.core.feature import Feature
from hyperhive.core.followups import FollowupsFeature
from hyperhive.core.hive import Hive
from hyperhive.core.lifecycle import Lifecycle
from hyperhive.core.modelproxy import ModelProxy
from hyperhive.core.nodes import NodesFeature
from hyperhive.core.permissions import PermissionsFeature
from hyperhive.core.questions import QuestionsFeature
from hyperhive.core.reminders import RemindersFeature
from hyperhive.core.search import SearchFeature
from hyperhive.core.store.nodes import NodeStore
from hyperhive.paths import HivePaths
from hyperhive.runtime.base import Runtime
from hyperhive.web.agentports import AgentPorts
from hyperhive.web.dashboard.feature import DashboardFeature
from hyperhive.web.peer import PeerFeature

# every feature a default hive runs, by name
FEATURES = (
    "nodes",
    "peer",
    "model_proxy",
    "followups",
    "questions",
    "budgets",
    "reminders",
    "permissions",
    "configs",
    "approvals",
    "lifecycle",
    "crash_watch",
    "search",
    "agent_ports",
    "dashboard",
)


def build_features(
    *,
    dashboard: str | None = None,
    runtime_factory: Callable[[str], Runtime] | None = None,
    crash_interval: float = 2.0,
    without: Collection[str] = (),
    node: str | None = None,
    node_store: Callable[[Hive], NodeStore] | None = None,
) -> tuple[list[Feature], Lifecycle | None]:
    """The features of a hive, wired, and its lifecycle (the core's launcher) if it runs one.

    `dashboard`: where the dashboard listens, over `HIVE_DASHBOARD` and hive.toml.
    `runtime_factory`: the lifecycle's runtimes by name (tests: a fake world), else the real ones.
    `without`: names of features to leave out; the features that would use one get None
    (approvals need configs, the crash watch the lifecycle: they go too).
    `node` / `node_store`: this node's name (over `HIVE_NODE` and `[node] name`) and where
    the nodes table lives (default: the hive's own database)."""
    unknown = set(without) - set(FEATURES)
    if unknown:
        raise ValueError(f"no such features: {sorted(unknown)}")

    def wanted(name: str) -> bool:
        return name not in without

    nodes = NodesFeature(node, store=node_store) if wanted("nodes") else None
    proxy = ModelProxy() if wanted("model_proxy") else None
    lifecycle: Lifecycle | None = None
    configs = (
        ConfigRepos(repo_owner=lambda name: lifecycle.repo_owner(name) if lifecycle else None)
        if wanted("configs")
        else None
    )
    if wanted("lifecycle"):
        lifecycle = Lifecycle(
            configs=configs,
            model_sockets=proxy,
            runtime_factory=runtime_factory,
            placement=nodes,
        )
    questions = QuestionsFeature() if wanted("questions") else None
    out: list[Feature | None] = [
        nodes,
        PeerFeature(nodes) if nodes and wanted("peer") else None,
        proxy,
        FollowupsFeature() if wanted("followups") else None,
        questions,
        BudgetsFeature(questions) if wanted("budgets") else None,
        RemindersFeature() if wanted("reminders") else None,
        PermissionsFeature() if wanted("permissions") else None,
        configs,
        ApprovalsFeature(configs, lifecycle) if configs and wanted("approvals") else None,
        lifecycle,
        CrashWatch(lifecycle, crash_interval) if lifecycle and wanted("crash_watch") else None,
        SearchFeature() if wanted("search") else None,
        AgentPorts() if wanted("agent_ports") else None,
        DashboardFeature(dashboard) if wanted("dashboard") else None,
    ]
    return [f for f in out if f is not None], lifecycle


def build_hive(
    paths: HivePaths,
    config: HiveConfig | None = None,
    *,
    clock: Clock | None = None,
    dashboard: str | None = None,
    runtime_factory: Callable[[str], Runtime] | None = None,
    crash_interval: float = 2.0,
    without: Collection[str] = (),
    node: str | None = None,
    node_store: Callable[[Hive], NodeStore] | None = None,
    database: str | None = None,
) -> Hive:
    """A hive with the default features (see `build_features` for the options).
    `database`: the storage URL (`hive serve --db`), over HIVE_DATABASE_URL and hive.toml."""
    features, lifecycle = build_features(
        dashboard=dashboard,
        runtime_factory=runtime_factory,
        crash_interval=crash_interval,
        without=without,
        node=node,
        node_store=node_store,
    )
    return Hive(
        paths, config, clock=clock, features=features, launcher=lifecycle, database=database
    )


def throwaway_hive(paths: HivePaths, config: HiveConfig | None = None) -> Hive:
    """For the hives of benchmarks and the demo: the dashboard on any free port, so they run
    while another hive holds the default one."""
    return build_hive(paths, config, dashboard=FREE_PORT_LISTEN)
