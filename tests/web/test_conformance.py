"""Schemathesis over the dashboard's own `/api/openapi.json`, with the operator token, against
the real dashboard app served on 127.0.0.1 by a real core (agents on the fake runtime): every
operation, positive and negative examples, every check schemathesis ships (server errors,
status codes and content types the document allows, response schemas, `Allow` on 405, ...).

The core runs in a thread of its own (schemathesis calls the API synchronously). The event
stream is left out: it never ends by design (its frames are tested in test_api.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from hyperhive.config import Dashboard, Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeWorld
from tests.support.threaded import hive_in_thread
from tests.web.conftest import fake_hive

TOKEN = "conformance-token-0123456789"
EXAMPLES = 15  # per operation and generation mode: seconds, not minutes
SKIPPED = {"/dashboard/stream"}


def build(paths: HivePaths, config: HiveConfig) -> Hive:
    """The fake-runtime hive without the agent ports (fixed port range, shared machine)."""
    return fake_hive(paths, config, FakeWorld(), without={"agent_ports"})


@pytest.fixture
def served(short_tmp: Path) -> Iterator[str]:
    """A core with its dashboard (token configured) on a free loopback port, in a thread."""
    token_file = short_tmp / "token"
    token_file.write_text(TOKEN)
    config = HiveConfig(
        defaults=Defaults(runtime="fake"),
        dashboard=Dashboard(listen="127.0.0.1:0", token_file=str(token_file)),
    )

    async def setup(hive: Hive) -> None:
        await hive.spawn("alice")

    with hive_in_thread(HivePaths(short_tmp / "h"), config, build, setup) as hive:
        yield hive.dashboard_url.rstrip("/")


def test_the_api_conforms_to_its_openapi_document(served: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    auth = {"Authorization": f"Bearer {TOKEN}"}
    # a body over its byte cap is refused 413 (Content Too Large) before it is parsed
    refused = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428"]
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [*refused, "429", "5xx"]}}}
    )
    schema = schemathesis.openapi.from_url(
        f"{served}/api/openapi.json", headers=auth, config=config
    )
    failures: list[str] = []
    tried = 0
    operations = 0
    timings: list[tuple[float, str]] = []

    def call(case: Any) -> None:
        nonlocal tried
        tried += 1
        case.call_and_validate(base_url=served, headers=auth)

    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in SKIPPED:
            continue
        operations += 1
        started = time.monotonic()
        # the coverage phase: boundary values, missing and wrong-typed fields, other methods
        generation = schema.config.generation_for(operation=op, phase="coverage")
        cases = schema.iter_coverage_cases(
            op, generation_modes=list(GenerationMode), generation_config=generation
        )
        for case in cases:
            try:
                call(case)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{op.method.upper()} {op.path} [coverage]: {exc}"[:2000])
        # then fuzzing: hypothesis, positive and negative
        for mode in GenerationMode:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=op.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                call(case)

            try:
                check()
            except Unsatisfiable:
                pass  # no negative input exists (a route without parameters or body)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{op.method.upper()} {op.path} [{mode.value}]: {exc}"[:2000])
        timings.append((time.monotonic() - started, f"{op.method.upper()} {op.path}"))
    timings.sort(reverse=True)
    print(f"\nschemathesis: {operations} operations, {tried} requests, {len(failures)} failing")
    print("slowest:", ", ".join(f"{w} {t:.1f}s" for t, w in timings[:4]))
    assert operations >= 18
    assert not failures, "\n\n".join(failures)
