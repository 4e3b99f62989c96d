"""The list of features a default hive runs, in start order. One line per feature."""

from __future__ import annotations

from hyperhive.core.feature import Feature


def default_features() -> list[Feature]:
    from hyperhive.core.agentports import AgentPorts
    from hyperhive.core.approvals import ApprovalsFeature
    from hyperhive.core.crashwatch import CrashWatch
    from hyperhive.core.dashboard import DashboardFeature
    from hyperhive.core.lifecycle import Lifecycle
    from hyperhive.core.modelproxy import ModelProxy
    from hyperhive.core.questions import QuestionsFeature
    from hyperhive.core.reminders import RemindersFeature
    from hyperhive.core.threads import ThreadsFeature

    return [
        ModelProxy(),
        ThreadsFeature(),  # before the features that register thread sources
        QuestionsFeature(),
        RemindersFeature(),
        ApprovalsFeature(),  # sets hive.configs, which the lifecycle reads at start
        Lifecycle(),
        CrashWatch(),
        AgentPorts(),  # each agent's page on its sticky port
        DashboardFeature(),  # last: serves once everything else is up
    ]
