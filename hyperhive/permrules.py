"""Claude Code permission rules in pure Python: parse a rule and tell whether a tool use
matches it. Used by the harness (which `can_use_tool` requests go to the operator) and by
the core (an agent's "allow always" rules). Pure: no I/O, imports nothing of ours.

The syntax is Claude Code's own (`permissions.allow/ask/deny` in settings):
- `Tool` — every use of the tool (`Bash`, `Write`, `mcp__github__create_issue`).
- `mcp__server` — every tool of that MCP server (as the CLI reads it); a `*` in a name is a
  glob (`mcp__github__*`, `mcp__*`).
- `Bash(spec)` — the shell command: `prefix:*` (the prefix alone or followed by a space and
  anything: `Bash(git push:*)` matches `git push` and `git push origin main`, not
  `git pushx`), else a glob where `*` is any text (`Bash(npm run *)`, `Bash(ls)` exactly).
  A compound command (`a && b`, `a; b`, `a | b`, `a || b`, one per line) matches when any
  of its parts does, so `cd x && git push` is still a push.
- `Read(spec)`, `Write(spec)`, `Edit(spec)`, `MultiEdit(spec)`, `NotebookEdit(spec)`,
  `Glob(spec)`, `Grep(spec)`, `LS(spec)` — a gitignore-style path glob against the tool's path
  (`file_path`, `notebook_path` or `path`): `**` any number of directories, `*` and `?`
  within one name; `//abs/path` is absolute, `~/x` is under the home dir, `/x` and `x` are
  relative to the project dir (the agent's cwd).
- `WebFetch(domain:example.com)` — the URL's host (or a subdomain of it).
- Any other `Tool(spec)` matches only with the spec `*`.

Invariants: `parse` refuses what Claude Code would not read as one rule (a `RuleError` with a
one-line reason); `matches` never raises, whatever the tool input holds (a missing or non-string
field simply does not match a spec).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

RULE_MAX = 1000
_NAME = re.compile(r"^[A-Za-z0-9_*-]{1,200}$")
_SHELL_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\||\n)\s*")
PATH_TOOLS: frozenset[str] = frozenset(
    {"Read", "Write", "Edit", "MultiEdit", "NotebookEdit", "Glob", "Grep", "LS"}
)
_PATH_KEYS = ("file_path", "notebook_path", "path")


class RuleError(ValueError):
    """A string that is not a permission rule."""


@dataclass(frozen=True)
class Rule:
    tool: str  # the tool-name part; may hold `*`
    spec: str | None = None  # what is inside the parentheses

    def __str__(self) -> str:
        return self.tool if self.spec is None else f"{self.tool}({self.spec})"


def parse(text: str) -> Rule:
    """One rule, or `RuleError` saying what is wrong."""
    raw = text.strip()
    if not raw:
        raise RuleError("a permission rule is empty")
    if len(raw) > RULE_MAX:
        raise RuleError(f"a permission rule is over {RULE_MAX} characters")
    if "(" in raw:
        if not raw.endswith(")"):
            raise RuleError(f"{raw!r}: a rule with '(' must end with ')'")
        tool, spec = raw[:-1].split("(", 1)
        if not spec.strip():
            raise RuleError(f"{raw!r}: empty parentheses (write just {tool!r} for every use)")
    else:
        tool, spec = raw, None
    if raw.endswith(")") and spec is None:
        raise RuleError(f"{raw!r}: ')' without '('")
    if not _NAME.match(tool):
        raise RuleError(f"{raw!r}: the tool name may hold only A-Z a-z 0-9 _ - *")
    return Rule(tool, spec)


def parse_all(texts: Iterable[str]) -> list[Rule]:
    return [parse(t) for t in texts]


def check(texts: Iterable[str]) -> list[str]:
    """The rules as given (stripped), or `RuleError` naming the first bad one (for config
    validators)."""
    return [str(parse(t)) for t in texts]


def _name_matches(pattern: str, tool: str) -> bool:
    if pattern == tool:
        return True
    if "*" in pattern:
        return fnmatch.fnmatchcase(tool, pattern)
    # `mcp__server` is the whole server
    return (
        pattern.startswith("mcp__") and pattern.count("__") == 1 and tool.startswith(pattern + "__")
    )


def _glob_re(glob: str, *, path: bool) -> re.Pattern[str]:
    """`*` any text (within one path name when `path`), `**` (paths) any directories, `?` one
    character (paths); everything else literal."""
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if path and glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if path and glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*" if path else ".*")
        elif c == "?" and path:
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _bash_matches(spec: str, command: str, every_part: bool) -> bool:
    whole = " ".join(command.split())
    parts = [" ".join(p.split()) for p in _SHELL_SPLIT.split(command.strip()) if p.strip()]
    if spec.endswith(":*"):
        prefix = " ".join(spec[:-2].split())

        def one(p: str) -> bool:
            return p == prefix or p.startswith(prefix + " ")

    else:
        pattern = _glob_re(" ".join(spec.split()), path=False)

        def one(p: str) -> bool:
            return pattern.fullmatch(p) is not None

    if every_part:
        return (
            one(whole)
            if len(parts) <= 1
            else all(one(p) for p in parts) or (":*" not in spec and one(whole))
        )
    return one(whole) or any(one(p) for p in parts)


def _path_matches(spec: str, path: str, cwd: str, home: str) -> bool:
    if spec.startswith("//"):
        pattern = spec[1:]
    elif spec.startswith("~/"):
        pattern = posixpath.join(home, spec[2:])
    elif spec.startswith("/"):
        pattern = posixpath.join(cwd, spec[1:])
    else:
        # gitignore: a pattern without a directory part matches at any depth below cwd
        pattern = posixpath.join(cwd, spec if "/" in spec.rstrip("/") else "**/" + spec)
    target = posixpath.normpath(posixpath.join(cwd, path))
    return bool(_glob_re(pattern, path=True).fullmatch(target))


def _host_matches(domain: str, url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    d = domain.lower()
    return bool(host) and (host == d or host.endswith("." + d))


def matches(
    rule: Rule,
    tool: str,
    tool_input: Mapping[str, Any],
    *,
    cwd: str = "/state",
    home: str = "/state",
    every_part: bool = False,
) -> bool:
    """Whether a use of `tool` with `tool_input` falls under `rule`. A compound shell command
    falls under it when any part does, or with `every_part` (an allow rule: nothing may slip
    through beside an allowed command) only when every part does (or the rule names the
    whole compound command exactly)."""
    if not _name_matches(rule.tool, tool):
        return False
    spec = rule.spec
    if spec is None or spec.strip() == "*":
        return True
    if tool == "Bash":
        command = tool_input.get("command")
        return isinstance(command, str) and _bash_matches(spec, command, every_part)
    if tool in PATH_TOOLS:
        for key in _PATH_KEYS:
            value = tool_input.get(key)
            if isinstance(value, str) and value:
                return _path_matches(spec.strip(), value, cwd, home)
        return False
    if tool == "WebFetch" and spec.startswith("domain:"):
        url = tool_input.get("url")
        return isinstance(url, str) and _host_matches(spec[len("domain:") :].strip(), url)
    return False


def first_match(
    rules: Iterable[Rule],
    tool: str,
    tool_input: Mapping[str, Any],
    *,
    cwd: str = "/state",
    home: str = "/state",
    every_part: bool = False,
) -> Rule | None:
    """The first of `rules` that `tool` with `tool_input` falls under, if any."""
    for rule in rules:
        if matches(rule, tool, tool_input, cwd=cwd, home=home, every_part=every_part):
            return rule
    return None


def exact_rule(tool: str, tool_input: Mapping[str, Any]) -> str | None:
    """The narrowest rule for this one use, kept by "allow always": `Bash(<the command>)`
    (whitespace collapsed) for a shell command, `Tool(//abs/path)` for a file tool with an
    absolute path, else the tool's name. None when no rule is that narrow: a command or path
    holding a glob character would read as a glob, and the bare tool name would allow far more
    than the operator saw."""
    if tool == "Bash":
        command = tool_input.get("command")
        if isinstance(command, str) and command.strip() and "*" not in command:
            return f"Bash({' '.join(command.split())})"
        return None
    if tool in PATH_TOOLS:
        for key in _PATH_KEYS:
            value = tool_input.get(key)
            if isinstance(value, str) and value:
                if value.startswith("/") and not set("*?[") & set(value):
                    return f"{tool}(/{posixpath.normpath(value)})"
                return None
    return tool
