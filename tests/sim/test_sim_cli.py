"""`hive sim`: hyperhive/cli/sim.py, run as a real process."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from hyperhive.cli.sim import parse_listen, sim
from hyperhive.errors import ConfigError

LAUNCH = "import sys; from hyperhive.cli.sim import sim; sim(sys.argv[1:])"


async def line_with(stream: asyncio.StreamReader, marker: str) -> str:
    async with asyncio.timeout(30):
        while line := (await stream.readline()).decode():
            if marker in line:
                return line
    raise AssertionError(f"output ended before {marker!r}")


async def ask(url: str, prompt: str) -> str:
    async with httpx.AsyncClient() as http:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": prompt}]}
        r = await http.post(f"{url}/a/alice/v1/messages?beta=true", json=body)
        r.raise_for_status()
        return str(r.json()["content"][0]["text"])


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[default]\ntext = "first {agent}"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LAUNCH,
        str(scenario),
        "--listen",
        "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc, scenario
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_serves_reloads_and_stops(served: tuple[asyncio.subprocess.Process, Path]) -> None:
    proc, scenario = served
    assert proc.stdout is not None and proc.stderr is not None
    line = await line_with(proc.stdout, "listening on")
    url = line.split()[-1]
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    assert await ask(url, "hi") == "first alice"
    await line_with(proc.stderr, "#0 alice main -> default")

    scenario.write_text('[default]\ntext = "second"\n')
    proc.send_signal(signal.SIGHUP)
    await line_with(proc.stderr, "reloaded")
    assert await ask(url, "hi") == "second"

    scenario.write_text("[default]\ntxt = 1\n")
    proc.send_signal(signal.SIGHUP)
    assert "default.txt" in await line_with(proc.stderr, "reload failed")
    assert await ask(url, "hi") == "second"

    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        assert await proc.wait() == 0


def test_bad_scenario_is_a_config_error(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text("[[rules]]\nwhen = 1\n")
    result = CliRunner().invoke(sim, [str(scenario), "--listen", "127.0.0.1:0"])
    assert isinstance(result.exception, ConfigError)
    assert "unknown key 'rules.0.when'" in str(result.exception)


def test_help_names_the_environment_variables() -> None:
    result = CliRunner().invoke(sim, ["--help"])
    assert result.exit_code == 0
    assert "HIVE_SIM_LISTEN" in result.output
    assert "HIVE_SIM_SCENARIO" in result.output


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8787", ("127.0.0.1", 8787)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8787", ":8787", "host:", "host:x", "host:70000"])
def test_parse_listen_rejects(value: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_listen(value)
