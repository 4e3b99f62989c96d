"""The list of features a default hive runs, in start order. One line per feature."""

from __future__ import annotations

from hyperhive.core.feature import Feature


def default_features(*, dashboard: str | None = None) -> list[Feature]:
    """`dashboard`: where the dashboard listens, over `HIVE_DASHBOARD` and hive.toml."""
    from hyperhive.core.agentports import AgentPorts
    from hyperhive.core.approvals import ApprovalsFeature
    from hyperhive.core.crashwatch import CrashWatch
    from hyperhive.core.dashboard import DashboardFeature
    from hyperhive.core.followups import FollowupsFeature
    from hyperhive.core.lifecycle import Lifecycle
    from hyperhive.core.modelproxy import ModelProxy
    from hyperhive.core.questions import QuestionsFeature
    from hyperhive.core.reminders import RemindersFeature

    return [
        ModelProxy(),
        FollowupsFeature(),  # before the features that register followup sources
        QuestionsFeature(),
        RemindersFeature(),
        ApprovalsFeature(),  # sets hive.configs, which the lifecycle reads at start
        Lifecycle(),
        CrashWatch(),
        AgentPorts(),  # each agent's page on its sticky port
        DashboardFeature(dashboard),  # last: serves once everything else is up
    ]


def throwaway_features() -> list[Feature]:
    """For the hives of benchmarks and the demo: the dashboard on any free port, so they run
    while another hive holds the default one."""
    from hyperhive.config import FREE_PORT_LISTEN

    return default_features(dashboard=FREE_PORT_LISTEN)
