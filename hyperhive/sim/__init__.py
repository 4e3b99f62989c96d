"""hyperhive.sim: a scripted model server that speaks the Anthropic Messages API.

The real `claude` CLI runs against it (ANTHROPIC_BASE_URL) so the hive can be exercised end to
end without a model: scenarios (TOML/JSON data files) say what the "model" answers to whom.
Layering, bottom up: `scenario` (validated data), `inbound` (reading a request), `sse` (wire
format), `script` (choosing the answer), `journal` (request log), `server` (HTTP + lifecycle).
"""

from hyperhive.sim.inbound import Inbound, ToolResult
from hyperhive.sim.journal import LoggedRequest
from hyperhive.sim.scenario import (
    Answer,
    ErrorSpec,
    Rule,
    Scenario,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    UsageSpec,
)
from hyperhive.sim.server import SimServer

__all__ = [
    "Answer",
    "ErrorSpec",
    "Inbound",
    "LoggedRequest",
    "Rule",
    "Scenario",
    "SimServer",
    "TextBlock",
    "ThinkingBlock",
    "ToolResult",
    "ToolUseBlock",
    "UsageSpec",
]
