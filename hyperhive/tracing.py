"""OpenTelemetry traces (the official SDK), off by default.

On when the standard variables name an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SDK_DISABLED=true` turns it off again): spans
then go through a batch processor to the OTLP/HTTP exporter, which reads the other
`OTEL_EXPORTER_OTLP_*` variables itself; `OTEL_SERVICE_NAME` names the service. Tests install
a provider of their own (`use_provider`, e.g. with the SDK's in-memory exporter).

How one trace crosses agents: a message carries the W3C `traceparent` of the span that sent
it (`messages.trace_parent`); the recipient's turn span takes it as its parent, and whatever
that turn sends carries the turn's own span. The operator's messages start a trace (a short
`operator message` span in the core).

Invariants: nothing of OpenTelemetry is imported unless tracing is on (the harness's idle
memory); every helper is a no-op returning None when it is off; a malformed `traceparent`
starts a new trace rather than failing anything.
"""

from __future__ import annotations

import os
import re
from typing import Any

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

_provider: Any = None
_checked = False


def wanted(env: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Whether the environment asks for traces."""
    e = os.environ if env is None else env
    if e.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(e.get(v) for v in ENDPOINT_VARS)


def _setup(service: str) -> Any:
    global _provider, _checked
    if _provider is not None or _checked:
        return _provider
    _checked = True
    if not wanted():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(resource=Resource.create(attrs))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider = provider
    return provider


def use_provider(provider: Any) -> None:
    """Install a `TracerProvider` (tests); None turns tracing off again."""
    global _provider, _checked
    _provider = provider
    _checked = provider is None


def enabled(service: str = "hyperhive") -> bool:
    return _setup(service) is not None


def tracer(name: str, service: str = "hyperhive") -> Any:
    """An OpenTelemetry tracer, or None when tracing is off."""
    provider = _setup(service)
    return provider.get_tracer(name) if provider is not None else None


def context_of(traceparent: str | None) -> Any:
    """The OpenTelemetry context whose parent is `traceparent` (None: a new trace)."""
    if not traceparent or not TRACEPARENT_RE.match(traceparent):
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def traceparent_of(span: Any) -> str | None:
    """The W3C traceparent naming `span` (None when it is not recording)."""
    if span is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def passthrough_env() -> dict[str, str]:
    """The `OTEL_*` variables of this process, for the harnesses it starts."""
    return {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}


def read_traceparent(path: str | None) -> str | None:
    """A traceparent kept in a file (the harness's running turn, read by the MCP server);
    None when missing or malformed."""
    if not path:
        return None
    try:
        with open(path, encoding="ascii") as f:
            text = f.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if TRACEPARENT_RE.match(text) else None


def shutdown() -> None:
    """Flush and stop the exporter (at exit)."""
    provider = _provider
    if provider is not None:
        provider.shutdown()
