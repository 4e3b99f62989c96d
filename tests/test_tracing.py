"""`hyperhive.tracing` alone: off unless the OTLP variables ask, nothing of OpenTelemetry
imported by the harness when off, malformed trace context ignored, the traceparent file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hyperhive import tracing


def test_wanted_follows_the_standard_variables() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    )


def test_the_harness_imports_no_opentelemetry_when_off() -> None:
    """The harness (long-lived, idle most of the time) imports none of it; the MCP server
    gets OpenTelemetry's API from the `mcp` SDK itself, but never the SDK (ours) from us."""
    code = (
        "import sys, hyperhive.harness.main;"
        "from hyperhive import tracing;"
        "assert not tracing.enabled();"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('opentelemetry', 'prometheus_client')];"
        "import hyperhive.mcptools.server;"
        "bad += [m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))];"
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_malformed_context_starts_a_new_trace(short_tmp: Path) -> None:
    assert tracing.context_of(None) is None
    assert tracing.context_of("not-a-traceparent") is None
    assert tracing.context_of("00-" + "g" * 32 + "-" + "0" * 16 + "-01") is None
    f = short_tmp / "traceparent"
    assert tracing.read_traceparent(str(f)) is None  # missing
    good = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    f.write_text(good + "\n")
    assert tracing.read_traceparent(str(f)) == good
    f.write_text("00-xyz")
    assert tracing.read_traceparent(str(f)) is None
    assert tracing.read_traceparent(None) is None


def test_passthrough_env_takes_only_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318")
    monkeypatch.setenv("OTELX", "no")
    env = tracing.passthrough_env()
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://x:4318" and "OTELX" not in env
