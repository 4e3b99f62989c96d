"""What one `claude -p` turn needs: permission settings, MCP config, argv and environment.

Everything here builds plain JSON-able dicts and lists; the caller writes the files and starts
the process (`hyperhive.harness.claude`). Only `find_claude_binary` (re-exported from
`hyperhive.claudebin`, the one resolver) looks at the machine.

Invariants:
- Permissions are an explicit allow list per flavor plus a deny list that always holds
  `ALWAYS_DENY`. `bypassPermissions` is never used: the CLI refuses it as root, and an explicit
  list says what an agent may do.
- MCP tools are allowed per server with the rule `mcp__<server>` (measured with 2.1.330:
  `mcp__srv` and `mcp__srv__*` allow every tool of `srv`, `mcp__srv__tool` one tool, `mcp__*`
  nothing). The hive's own server is always keyed `hyperhive`; no extra server may take the key.
- A bad extra MCP server entry is skipped with a warning naming it, never fatal: one typo in an
  agent's config must not stop the agent. Entries are checked in plain Python (`ExtraServer`),
  with the wording of the core's pydantic model: the harness does not import pydantic.
- The prompt goes after `--` in argv: `--allowedTools`, `--disallowedTools` and `--mcp-config`
  are variadic and would swallow it.
- The environment is built, not inherited wholesale: `ANTHROPIC_*` and `CLAUDE*` variables of the
  calling process are dropped so a parent Claude Code session or a stray key cannot leak in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from hyperhive.claudebin import find_claude_binary as find_claude_binary

JsonDict = dict[str, Any]
StrPath = str | os.PathLike[str]
Flavor = Literal["agent", "manager"]

HYPERHIVE_SERVER = "hyperhive"
"""The key of the hive's own MCP server; its tools are `mcp__hyperhive__<tool>`."""

BUILTIN_TOOLS: tuple[str, ...] = (
    "Read",
    "Write",
    "Edit",
    "MultiEdit",
    "NotebookEdit",
    "Glob",
    "Grep",
    "LS",
    "Bash",
    "BashOutput",
    "KillShell",
    "TaskStop",
    "Monitor",
)
"""Built-in tools an agent may use without asking: files, shell (with its background jobs),
notebooks. The set spans CLI versions (2.1.330 has no MultiEdit, Glob, Grep, LS, BashOutput,
KillShell; 2.1.19x has no TaskStop, Monitor); a rule for a missing tool is harmless. Anything
else is denied or, in `-p` mode, refused for want of a rule."""

FLAVOR_ALLOW: Mapping[Flavor, tuple[str, ...]] = {
    "agent": (*BUILTIN_TOOLS, f"mcp__{HYPERHIVE_SERVER}"),
    # The manager's extra powers are manager-only tools on the same hyperhive server, so its
    # rules are the same; kept separate so the two can diverge.
    "manager": (*BUILTIN_TOOLS, f"mcp__{HYPERHIVE_SERVER}"),
}

ALWAYS_DENY: tuple[str, ...] = ("TodoWrite", "WebFetch", "WebSearch", "Task", "Agent")
"""Never for a hive agent: its plan lives in the hive, the network is the sandbox's business,
and helpers are spawned through the hive (`Agent` is the newer name of `Task`)."""

ONE_SHOT_DENY: tuple[str, ...] = (
    "CronCreate",
    "CronDelete",
    "CronList",
    "ScheduleWakeup",
    "Workflow",
    "SendMessage",
    "ListAgents",
)
"""2.1.330 tools that schedule later work inside the CLI process or fan out to helpers. Each turn
is its own process that exits when the turn ends, so a schedule would silently never fire, and
helpers go through the hive like `Task`; the hive has `remind` and `send` for both."""

_SERVER_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def settings_json(
    flavor: Flavor,
    extra_allow: Iterable[str] = (),
    extra_deny: Iterable[str] = (),
    ask: Iterable[str] = (),
) -> JsonDict:
    """The `--settings` file: `{"permissions": {"allow": [...], "deny": [...]}}`, plus
    `"ask": [...]` when the agent has `ask_operator_for` patterns.

    Lists keep their order without duplicates. A rule in both lists is denied (the CLI lets
    deny win). An `ask` rule wins over `allow` (the CLI then sends `can_use_tool` to the
    harness's `PermissionGate`: `harness/opgate.py`), and `deny` wins over both."""
    if flavor not in FLAVOR_ALLOW:
        raise ValueError(f"unknown flavor {flavor!r} (expected one of {sorted(FLAVOR_ALLOW)})")
    allow = _unique((*FLAVOR_ALLOW[flavor], *extra_allow))
    deny = _unique((*ALWAYS_DENY, *ONE_SHOT_DENY, *extra_deny))
    perms: JsonDict = {"allow": allow, "deny": deny}
    asked = _unique(ask)
    if asked:
        perms["ask"] = asked
    return {"permissions": perms}


@dataclass(frozen=True)
class ExtraServer:
    """One extra stdio MCP server from an agent's config (`[extra_mcp_servers.<key>]`)."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    allowed_tools: tuple[str, ...] = ("*",)

    @classmethod
    def parse(cls, entry: object) -> ExtraServer:
        """The server an entry describes; `ValueError("<field>: <problem>")` naming the first
        problem (the checks and wording of the core's `ExtraMcpServer` pydantic model, plus
        strict types: no coercion)."""
        if not isinstance(entry, Mapping):
            raise ValueError("entry: Input should be a valid dictionary")
        if "command" not in entry:
            raise ValueError("command: Field required")
        command = entry["command"]
        if not isinstance(command, str):
            raise ValueError("command: Input should be a valid string")
        if not command:
            raise ValueError("command: String should have at least 1 character")
        args = _string_list(entry, "args", [])
        env = entry.get("env", {})
        if not isinstance(env, Mapping):
            raise ValueError("env: Input should be a valid dictionary")
        for name, value in env.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ValueError(f"env.{name}: Input should be a valid string")
        tools = _string_list(entry, "allowed_tools", ["*"])
        for extra in entry:
            if extra not in _EXTRA_SERVER_FIELDS:
                raise ValueError(f"{extra}: Extra inputs are not permitted")
        return cls(command, tuple(args), dict(env), tuple(tools))


_EXTRA_SERVER_FIELDS = frozenset(f.name for f in fields(ExtraServer))


def _string_list(entry: Mapping[str, Any], key: str, default: list[str]) -> list[str]:
    value = entry.get(key, default)
    if not isinstance(value, list):
        raise ValueError(f"{key}: Input should be a valid list")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"{key}.{i}: Input should be a valid string")
    return value


def mcp_config(
    hyperhive_command: Sequence[str],
    hyperhive_env: Mapping[str, str],
    extra_servers: Mapping[str, Any],
) -> tuple[JsonDict, list[str], list[str]]:
    """The `--mcp-config` file, the allow rules for the extra servers, and warnings.

    The hive's server goes under `hyperhive`. Each valid extra server goes under its own key;
    its `allowed_tools` (default `["*"]`) become `mcp__<key>` for `"*"` (the whole server) or
    `mcp__<key>__<tool>` per name (an empty list allows nothing: every call is refused).
    """
    if not hyperhive_command:
        raise ValueError("hyperhive_command is empty")
    servers: JsonDict = {
        HYPERHIVE_SERVER: _stdio(hyperhive_command[0], hyperhive_command[1:], hyperhive_env)
    }
    allow: list[str] = []
    warnings: list[str] = []
    for key, entry in extra_servers.items():
        problem = _key_problem(key)
        if problem is not None:
            warnings.append(f"extra MCP server {key!r} skipped: {problem}")
            continue
        try:
            server = ExtraServer.parse(entry)
        except ValueError as exc:
            warnings.append(f"extra MCP server {key!r} skipped: {exc}")
            continue
        bad_tools = [t for t in server.allowed_tools if t != "*" and not _TOOL_NAME.match(t)]
        if bad_tools:
            warnings.append(
                f"extra MCP server {key!r} skipped: bad tool name(s) in allowed_tools: "
                + ", ".join(repr(t) for t in bad_tools)
            )
            continue
        servers[key] = _stdio(server.command, server.args, server.env)
        if "*" in server.allowed_tools:
            allow.append(f"mcp__{key}")
        else:
            allow.extend(f"mcp__{key}__{tool}" for tool in server.allowed_tools)
    return {"mcpServers": servers}, _unique(allow), warnings


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str) or not _SERVER_KEY.match(key):
        return "the key must be 1-64 characters of A-Z a-z 0-9 _ -"
    if key == HYPERHIVE_SERVER:
        return f"the key {HYPERHIVE_SERVER!r} is reserved for the hive's own server"
    if "__" in key:
        return "the key may not contain '__' (it separates server and tool in rule names)"
    return None


def _stdio(command: str, args: Sequence[str], env: Mapping[str, str]) -> JsonDict:
    return {"type": "stdio", "command": command, "args": list(args), "env": dict(env)}


def claude_argv(
    binary: StrPath,
    *,
    prompt: str | None,
    model: str | None = None,
    settings_path: StrPath | None = None,
    mcp_path: StrPath | None = None,
    system_prompt_path: StrPath | None = None,
    continue_session: bool = False,
    allowed_tools: Sequence[str] = (),
    disallowed_tools: Sequence[str] = (),
) -> list[str]:
    """`claude -p --output-format stream-json --verbose --include-partial-messages ... -- PROMPT`.

    `prompt=None`: no prompt in argv; the CLI reads stream-json turns and control requests on
    stdin (`--input-format stream-json --permission-prompt-tool stdio`, `harness/warm.py`).

    `--strict-mcp-config` is always given: no MCP server but those of `mcp_path` (none when it
    is None). A prompt starting with "/" runs as a slash command (`/compact`)."""
    argv = [os.fspath(binary), "-p", "--output-format", "stream-json", "--verbose"]
    argv.append("--include-partial-messages")  # `stream_event` lines: live text on the page
    if prompt is None:
        argv += ["--input-format", "stream-json", "--permission-prompt-tool", "stdio"]
    if model:
        argv += ["--model", model]
    if continue_session:
        argv.append("--continue")
    if settings_path is not None:
        argv += ["--settings", os.fspath(settings_path)]
    if mcp_path is not None:
        argv += ["--mcp-config", os.fspath(mcp_path)]
    argv.append("--strict-mcp-config")
    if system_prompt_path is not None:
        argv += ["--system-prompt-file", os.fspath(system_prompt_path)]
    if allowed_tools:
        argv += ["--allowedTools", *allowed_tools]
    if disallowed_tools:
        argv += ["--disallowedTools", *disallowed_tools]
    if prompt is not None:
        argv += ["--", prompt]
    return argv


QUIET_ENV: Mapping[str, str] = {
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    # 2.1.19x races MCP start-up otherwise: tools missing from the first request.
    "MCP_CONNECTION_NONBLOCKING": "false",
    "MCP_CONNECT_TIMEOUT_MS": "60000",
    # 2.1.330 otherwise hides MCP tool schemas behind ToolSearch.
    "ENABLE_TOOL_SEARCH": "false",
}
"""Set for every turn, whoever the model server is (claude-code.md, checked with strace)."""

_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def claude_env(
    *,
    home: StrPath,
    config_dir: StrPath,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int | None = None,
    inherit: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of one `claude` process.

    `inherit` (e.g. `os.environ`) is copied minus `ANTHROPIC_*` and `CLAUDE*`; without it only
    a default PATH is set. `base_url`/`api_key` are optional: without them the CLI uses the login
    stored under `config_dir` (real Anthropic use). `max_retries` sets CLAUDE_CODE_MAX_RETRIES
    (the CLI's default is 10 retries, about 3 minutes, even for a refused connection)."""
    env = {
        key: value
        for key, value in (inherit or {}).items()
        if not key.startswith(("ANTHROPIC_", "CLAUDE"))
    }
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update(QUIET_ENV)
    env["HOME"] = os.fspath(home)
    env["CLAUDE_CONFIG_DIR"] = os.fspath(config_dir)
    if base_url is not None:
        env["ANTHROPIC_BASE_URL"] = base_url
    if api_key is not None:
        env["ANTHROPIC_API_KEY"] = api_key
    if max_retries is not None:
        env["CLAUDE_CODE_MAX_RETRIES"] = str(max_retries)
    return env


def offline_env(
    base_url: str,
    api_key: str = "hyperhive-sim",
    *,
    home: StrPath,
    config_dir: StrPath,
    inherit: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`claude_env` for a local model server: a key is required (any string), no retries."""
    return claude_env(
        home=home,
        config_dir=config_dir,
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        inherit=inherit,
    )


_PROJECT_NAME_MAX = 200


def project_dir_name(cwd: StrPath) -> str:
    """The CLI's folder name for `cwd` under `$CLAUDE_CONFIG_DIR/projects/`: every character
    but A-Z a-z 0-9 becomes "-". Past 200 characters the CLI keeps the first 200 and appends
    "-<hash>"; this returns just the 200-character prefix then (match it with a glob)."""
    name = re.sub(r"[^a-zA-Z0-9]", "-", os.fspath(cwd))
    return name[:_PROJECT_NAME_MAX]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))
