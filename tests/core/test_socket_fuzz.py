"""Hypothesis over every verb of both sockets (an agent's `hive.sock`, as the manager, which
speaks every agent verb and its own; and `host.sock`): requests built from each verb's own
field names with values of every JSON type (names that are valid, reserved, traversing or
option-like among them), plus raw garbage lines.

Every request must get exactly one answer line: a JSON object with a boolean `ok`, an error
in the one error shape and never `internal` (the daemon's own bug); host answers carry
`"version": 1`; and the daemon answers a plain `whoami` afterwards. Bounded example counts:
this runs in seconds."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.wire.base import HOST_VERBS
from tests.support.threaded import hive_in_thread

# Hypothesis warns when the global `random` state moves while it draws an example (a strategy
# using `random`). Ours never do; but the hive runs in a thread of this process, and on
# PostgreSQL psycopg_pool draws `random()` for its jitter each time the pool adds a
# connection, which it does on demand. Seen once in a fresh-clone run under load: the warning,
# an error here, failed the agent-socket fuzz on PostgreSQL. Only that message is ignored.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
EXAMPLES = 400
TIMEOUT = 30.0
NAMES = ["alice", "manager", "operator", "system", "*", "ghost", "../x", "-rf", "A", "a" * 64, ""]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(NAMES)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
PARKING = ("wait_seconds",)  # a valid one parks the request up to 180 s: keep it short


def requests_for(verbs: dict[str, type[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    per_verb = []
    for cmd, model in sorted(verbs.items()):
        fields = {name: JSON for name in model.model_fields if name != "cmd"}
        fields["unknown_field"] = JSON
        per_verb.append(st.fixed_dictionaries({"cmd": st.just(cmd)}, optional=fields))
    return st.one_of(per_verb)


def tame(body: dict[str, Any]) -> dict[str, Any]:
    for key in PARKING:
        if isinstance(body.get(key), int | float) and not isinstance(body.get(key), bool):
            body[key] = min(body[key], 0.01)
    return body


def line_of(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode() + b"\n"


def exchange(path: Path, line: bytes, *, first_only: bool = False) -> list[bytes]:
    """Send one line, half-close, read every answer line until the daemon closes (or just
    the first line, for a stream)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(str(path))
        s.sendall(line)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if first_only and b"\n" in data:
                break
    return data.splitlines()[:1] if first_only else data.splitlines()


def check_answer(raw: bytes, host: bool) -> dict[str, Any]:
    answer = json.loads(raw)
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), answer
    if host:
        assert answer.get("version") == 1, answer
    if not answer["ok"]:
        assert isinstance(answer.get("error"), str) and answer["error"], answer
        assert "\n" not in answer["error"]
        assert isinstance(answer.get("code"), str) and answer["code"] != "internal", answer
    return answer


@pytest.fixture
def hive_config() -> HiveConfig:
    """A valid `ask_permission` parks until the operator decides or it expires: here it
    expires at once, so every fuzzed request is answered promptly."""
    return HiveConfig(defaults=Defaults(runtime="external", ask_operator_ttl_seconds=0.01))


@pytest.fixture
def core(paths: HivePaths, hive_config: HiveConfig) -> Iterator[Hive]:
    async def setup(hive: Hive) -> None:
        await hive.spawn("alice")

    with hive_in_thread(paths, hive_config, setup=setup) as hive:
        yield hive


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def test_every_agent_verb_answers_in_the_one_error_shape(core: Hive) -> None:
    sock = core.paths.agent_sock("manager")
    verbs = dict(core.verbs_for("manager").items())
    assert len(verbs) >= 14
    seen: dict[str, int] = {}

    @FUZZ
    @given(body=requests_for(verbs))
    def fuzz(body: dict[str, Any]) -> None:
        answers = exchange(sock, line_of(tame(body)))
        assert len(answers) == 1, (body, answers)
        answer = check_answer(answers[0], host=False)
        seen[body["cmd"]] = seen.get(body["cmd"], 0) + 1
        if answer["ok"] is False and answer["code"] == "bad_request":
            assert "cmd" not in str(answer["error"]) or body["cmd"] in verbs

    fuzz()
    # `one_of` draws its branches unevenly: a verb the draws missed still gets one request
    for cmd in sorted(set(verbs) - set(seen)):
        answers = exchange(sock, line_of({"cmd": cmd}))
        assert len(answers) == 1, (cmd, answers)
        check_answer(answers[0], host=False)
        seen[cmd] = 1
    assert set(seen) == set(verbs), set(verbs) - set(seen)
    assert check_answer(exchange(sock, line_of({"cmd": "whoami"}))[0], host=False)["ok"]
    print(f"\nagent socket: {sum(seen.values())} requests over {len(seen)} verbs, all answered")


def test_every_host_verb_answers_in_the_one_error_shape(core: Hive) -> None:
    sock = core.paths.host_sock
    verbs = dict(HOST_VERBS.items())
    assert len(verbs) >= 20
    seen: dict[str, int] = {}

    @FUZZ
    @given(body=requests_for(verbs))
    def fuzz(body: dict[str, Any]) -> None:
        stream = body["cmd"] == "subscribe_agent_status"  # answered, then it streams
        answers = exchange(sock, line_of(body), first_only=stream)
        assert len(answers) == 1, (body, answers)
        check_answer(answers[0], host=True)
        seen[body["cmd"]] = seen.get(body["cmd"], 0) + 1

    fuzz()
    for cmd in sorted(set(verbs) - set(seen)):  # missed by the uneven draws: one request each
        stream = cmd == "subscribe_agent_status"
        answers = exchange(sock, line_of({"cmd": cmd}), first_only=stream)
        assert len(answers) == 1, (cmd, answers)
        check_answer(answers[0], host=True)
        seen[cmd] = 1
    assert set(seen) == set(verbs), set(verbs) - set(seen)
    print(f"\nhost socket: {sum(seen.values())} requests over {len(seen)} verbs, all answered")


@FUZZ
@given(line=st.binary(max_size=300).filter(lambda b: b"\n" not in b))
def test_garbage_lines_get_one_error_line(core: Hive, line: bytes) -> None:
    for path, host in ((core.paths.agent_sock("alice"), False), (core.paths.host_sock, True)):
        answers = exchange(path, line + b"\n")
        if not line.strip() and not host:
            assert answers == []  # an empty line is skipped on the agent socket
            continue
        assert len(answers) == 1, (line, answers)
        check_answer(answers[0], host=host)


def test_the_global_random_moving_while_hypothesis_draws_is_not_an_error() -> None:
    """What the daemon thread's pool does to the global `random` state, done inside a draw
    (deterministically): under this module's filter the fuzz tests do not fail on it."""
    import random

    def moved(x: int) -> int:
        random.random()  # as psycopg_pool's jitter does, from the hive's thread
        return x

    @settings(max_examples=5, database=None, derandomize=True)
    @given(st.integers().map(moved))
    def drawn(x: int) -> None:
        assert isinstance(x, int)

    drawn()
