"""The permission rule syntax (Claude Code's), matched in pure Python."""

from __future__ import annotations

from typing import Any

import pytest

from hyperhive.permrules import RuleError, check, exact_rule, first_match, matches, parse


def m(rule: str, tool: str, every_part: bool = False, **inp: Any) -> bool:
    return matches(parse(rule), tool, inp, cwd="/state", home="/home/a", every_part=every_part)


def test_parse_shapes() -> None:
    assert str(parse(" Bash(git push:*) ")) == "Bash(git push:*)"
    assert parse("Write").spec is None
    assert parse("mcp__github__*").tool == "mcp__github__*"
    assert check(["Write", "Bash(ls)"]) == ["Write", "Bash(ls)"]


@pytest.mark.parametrize(
    "bad", ["", "   ", "Bash(", "Bash()", "Bash)", "Ba sh", "Bash(x)y", "x" * 1001, "Wr!te"]
)
def test_parse_refuses(bad: str) -> None:
    with pytest.raises(RuleError):
        parse(bad)


def test_tool_names() -> None:
    assert m("Write", "Write", file_path="/state/a")
    assert not m("Write", "Edit", file_path="/state/a")
    assert m("mcp__github__*", "mcp__github__create_issue")
    assert not m("mcp__github__*", "mcp__gitlab__create_issue")
    assert m("mcp__github", "mcp__github__create_issue")  # the whole server
    assert not m("mcp__github", "mcp__githubx__create_issue")
    assert m("mcp__github__create_issue", "mcp__github__create_issue")
    assert not m("mcp__github__create_issue", "mcp__github__close_issue")
    assert m("Bash(*)", "Bash", command="anything")


def test_bash_prefix() -> None:
    assert m("Bash(git push:*)", "Bash", command="git push")
    assert m("Bash(git push:*)", "Bash", command="git push origin main")
    assert m("Bash(git push:*)", "Bash", command="git  push   --force")  # spacing
    assert not m("Bash(git push:*)", "Bash", command="git pushx")
    assert not m("Bash(git push:*)", "Bash", command="git status")
    assert not m("Bash(git push:*)", "Bash", command="echo git push")
    assert not m("Bash(git push:*)", "Bash")  # no command
    assert not m("Bash(git push:*)", "Bash", command=42)


def test_bash_compound_any_part() -> None:
    assert m("Bash(git push:*)", "Bash", command="cd repo && git push origin")
    assert m("Bash(git push:*)", "Bash", command="make; git push")
    assert m("Bash(git push:*)", "Bash", command="true || git push")
    assert m("Bash(git push:*)", "Bash", command="echo x | git push")
    assert m("Bash(git push:*)", "Bash", command="ls\ngit push")


def test_bash_compound_every_part_for_allow_rules() -> None:
    assert not m("Bash(git push:*)", "Bash", True, command="git push && rm -rf /")
    assert m("Bash(git:*)", "Bash", True, command="git add . && git push")
    assert m("Bash(cd x && git push)", "Bash", True, command="cd x && git push")


def test_bash_glob_and_exact() -> None:
    assert m("Bash(npm run *)", "Bash", command="npm run test")
    assert not m("Bash(npm run *)", "Bash", command="npm install")
    assert m("Bash(ls)", "Bash", command="ls")
    assert not m("Bash(ls)", "Bash", command="ls -la")
    assert m("Bash(rm *)", "Bash", command="rm -rf a.b")
    assert not m("Bash(a.b)", "Bash", command="axb")  # regex characters are literal


def test_paths() -> None:
    assert m("Write(//etc/**)", "Write", file_path="/etc/passwd")
    assert m("Write(//etc/**)", "Write", file_path="/etc/ssh/sshd_config")
    assert not m("Write(//etc/**)", "Write", file_path="/state/etc/x")
    assert m("Edit(/src/**/*.py)", "Edit", file_path="/state/src/a/b.py")
    assert m("Edit(/src/**/*.py)", "Edit", file_path="src/b.py")  # relative to cwd
    assert not m("Edit(/src/*.py)", "Edit", file_path="/state/src/a/b.py")
    assert m("Read(~/.ssh/*)", "Read", file_path="/home/a/.ssh/id_rsa")
    assert m("Write(*.env)", "Write", file_path="/state/deep/er/prod.env")  # any depth
    assert not m("Write(*.env)", "Write", file_path="/elsewhere/prod.env")
    assert m("Write(//state/../etc/x)", "Write", file_path="/etc/x") is False  # literal
    assert m("Write(//etc/x)", "Write", file_path="/state/../etc/x")  # normalized target
    assert m("NotebookEdit(//n/*.ipynb)", "NotebookEdit", notebook_path="/n/a.ipynb")
    assert not m("Write(//etc/**)", "Write")


def test_webfetch_domain_and_other_specs() -> None:
    assert m("WebFetch(domain:example.com)", "WebFetch", url="https://api.example.com/x")
    assert m("WebFetch(domain:example.com)", "WebFetch", url="https://example.com")
    assert not m("WebFetch(domain:example.com)", "WebFetch", url="https://badexample.com")
    assert not m("mcp__x__y(whatever)", "mcp__x__y", a=1)


def test_first_match() -> None:
    rules = [parse("Write"), parse("Bash(git push:*)")]
    found = first_match(rules, "Bash", {"command": "git push"})
    assert found is not None and str(found) == "Bash(git push:*)"
    assert first_match(rules, "Read", {"file_path": "/x"}) is None


def test_exact_rule() -> None:
    assert exact_rule("Bash", {"command": "git  push origin"}) == "Bash(git push origin)"
    assert exact_rule("Bash", {"command": "rm *"}) is None
    assert exact_rule("Bash", {}) is None
    assert exact_rule("Write", {"file_path": "/etc/x/../y"}) == "Write(//etc/y)"
    assert exact_rule("Write", {"file_path": "rel"}) is None
    assert exact_rule("mcp__github__create_issue", {"title": "x"}) == "mcp__github__create_issue"
    # the exact rule matches the use it was made from, and (for a command) only that one
    rule = parse("Bash(git push origin)")
    assert matches(rule, "Bash", {"command": "git push origin"}, every_part=True)
    assert not matches(rule, "Bash", {"command": "git push origin --force"}, every_part=True)
