"""The files and command line one agent's `claude` CLI runs with: its system prompt, MCP
config and settings under `<state>/.hyperhive/`, its config dir `<state>/.claude/`, the argv
of a turn and its environment.

Invariants:
- `write` is the only writer of the three run files; it is called once the core told the
  harness who it is (`whoami`, `config`), and again on every start (a rebuild may change them).
- The conversation continues across turns and restarts: `argv` passes `--continue` once a
  session of this state dir exists under the config dir (`has_session`).
- The agent's own environment (`AgentView.env`) is applied over the CLI's; `HIVE_AGENT` is
  always the agent's name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hyperhive.harness import settings as cs
from hyperhive.harness.agentview import AgentView
from hyperhive.harness.options import HarnessOptions
from hyperhive.harness.prompt import system_prompt


@dataclass(frozen=True)
class Identity:
    """Who the agent is, as the core told it (`whoami` + `config`)."""

    name: str
    kind: str
    manager: str
    model: str
    config: AgentView
    role_prompt: str | None = None


class CliSetup:
    """One agent's CLI files and command lines (see the module's invariants)."""

    def __init__(self, opts: HarnessOptions) -> None:
        self.opts = opts
        self.run_dir = opts.state_dir / ".hyperhive"
        self.config_dir = opts.state_dir / ".claude"
        self.trace_file: Path | None = None  # the running turn's traceparent (tracing on)

    @property
    def settings_path(self) -> Path:
        return self.run_dir / "settings.json"

    @property
    def mcp_path(self) -> Path:
        return self.run_dir / "mcp.json"

    @property
    def system_prompt_path(self) -> Path:
        return self.run_dir / "system-prompt.md"

    def binary(self) -> Path:
        return self.opts.claude_bin or cs.find_claude_binary()

    def write(self, who: Identity) -> list[str]:
        """Write the system prompt, MCP config and settings for `who`; returns the config's
        problems (`settings.mcp_config` warnings) for the operator to see."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.system_prompt_path.write_text(
            system_prompt(
                who.kind, who.name, who.manager, str(self.opts.state_dir), who.role_prompt
            )
        )
        mcp, extra_allow, warnings = cs.mcp_config(
            [self.opts.python, "-m", "hyperhive.mcptools", "--socket", str(self.opts.socket)]
            + (["--trace-file", str(self.trace_file)] if self.trace_file is not None else []),
            {},
            who.config.extra_mcp_servers,
        )
        self.mcp_path.write_text(json.dumps(mcp, indent=2))
        settings = cs.settings_json(
            "manager" if who.kind == "manager" else "agent",
            extra_allow=[*extra_allow, *who.config.allowed_tools],
            extra_deny=who.config.denied_tools,
            ask=who.config.ask_operator_for,
        )
        settings["cleanupPeriodDays"] = 36500  # the CLI deletes sessions idle 30 days by default
        self.settings_path.write_text(json.dumps(settings, indent=2))
        return list(warnings)

    def session_dir(self) -> Path:
        """Where the CLI keeps this state dir's session transcripts."""
        return self.config_dir / "projects" / cs.project_dir_name(self.opts.state_dir)

    def has_session(self) -> bool:
        projects = self.config_dir / "projects"
        if not projects.is_dir():
            return False
        prefix = cs.project_dir_name(self.opts.state_dir)
        return any(d.name.startswith(prefix) and any(d.glob("*.jsonl")) for d in projects.iterdir())

    def argv(self, prompt: str | None, model: str) -> list[str]:
        """The CLI's argv; `prompt=None`: turns come on stdin (`harness/warm.py`)."""
        return cs.claude_argv(
            self.binary(),
            prompt=prompt,
            model=model,
            settings_path=self.settings_path,
            mcp_path=self.mcp_path,
            system_prompt_path=self.system_prompt_path,
            continue_session=self.has_session(),
        )

    def env(self, name: str, config: AgentView) -> dict[str, str]:
        env = cs.claude_env(
            home=self.opts.state_dir,
            config_dir=self.config_dir,
            base_url=self.opts.base_url,
            api_key=self.opts.api_key,
            max_retries=self.opts.model_retries,
            inherit=os.environ,
        )
        env.update(config.env)
        env["HIVE_AGENT"] = name
        return env
