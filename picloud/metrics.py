"""The Prometheus metrics of a PiCloud process, and their exposition.

Every process (a front door, each app host) counts into its own
:data:`REGISTRY`. ``GET /metrics`` on a front door's admin listener answers
its own samples and those of every live host, which it asks for a snapshot
(:func:`snapshot`, the text format) when it is scraped; each sample gets a
``process`` label (``front-door`` or the host's name), so a host's counters
that start again from zero after a restart are one series' reset, as
Prometheus expects, not a drop in a sum. A host that does not answer in time
is left out of that scrape (``picloud_metrics_hosts{answered="false"}``).

Labels stay bounded: an app's slug only once the request reached an app
that exists, a route's pattern (``/items/{id}``), never a raw path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Metric,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = [
    "APPEND_BATCH",
    "APPEND_SECONDS",
    "CONTENT_TYPE",
    "DEAD_LETTERS",
    "EXECUTIONS",
    "FRONT_DOOR",
    "HOST_RESTARTS",
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "KV_CACHE_HITS",
    "KV_CACHE_MISSES",
    "REGISTRY",
    "RETRIES",
    "TRIGGER_LAG",
    "exposition",
    "snapshot",
]

# ``*_created`` samples double the series and say nothing a restart's reset
# does not; every counter and histogram here is created at import.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FRONT_DOOR = "front-door"
"""The ``process`` label of a front door's own samples."""

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

HTTP_REQUESTS = Counter(
    "picloud_http_requests",
    "HTTP requests answered, by listener, app, route pattern, method and status",
    ["listener", "app", "route", "method", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "picloud_http_request_duration_seconds",
    "Time to answer an HTTP request, by listener, app and route pattern",
    ["listener", "app", "route"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
EXECUTIONS = Counter(
    "picloud_executions",
    "Script runs by status: ok, error, throttled (refused by the CPU budget), "
    "abandoned (the caller got 504)",
    ["status"],
    registry=REGISTRY,
)
TRIGGER_LAG = Histogram(
    "picloud_trigger_lag_seconds",
    "From when a delivery became due (its event's commit, for a first attempt) "
    "to the start of its run",
    buckets=_LAG,
    registry=REGISTRY,
)
RETRIES = Counter(
    "picloud_delivery_retries",
    "Failed delivery attempts that were scheduled to run again",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "picloud_dead_letters",
    "Deliveries that became dead letters after their last attempt failed",
    registry=REGISTRY,
)
HOST_RESTARTS = Counter(
    "picloud_host_restarts",
    "App hosts seen back at a new address (a new process), by host",
    ["host"],
    registry=REGISTRY,
)
KV_CACHE_HITS = Counter(
    "picloud_kv_cache_hits",
    "KV reads answered from an app's cache of durable values",
    registry=REGISTRY,
)
KV_CACHE_MISSES = Counter(
    "picloud_kv_cache_misses",
    "KV reads that went to the store",
    registry=REGISTRY,
)
APPEND_BATCH = Histogram(
    "picloud_eventlog_append_batch_events",
    "Events per group-commit append of an app's stream",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    registry=REGISTRY,
)
APPEND_SECONDS = Histogram(
    "picloud_eventlog_append_seconds",
    "Time of one group-commit append (its projections included)",
    buckets=_LATENCY,
    registry=REGISTRY,
)


def snapshot() -> str:
    """This process's samples in the text format (what a host answers)."""
    return generate_latest(REGISTRY).decode()


def _parse(text: str | None) -> list[Metric] | None:
    if text is None:
        return None
    try:
        return list(text_string_to_metric_families(text))
    except ValueError:
        return None


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def exposition(
    own: CollectorRegistry,
    hosts: Mapping[str, str | None],
    *,
    process: str = FRONT_DOOR,
) -> bytes:
    """One text exposition of ``own`` samples and each host's snapshot (None:
    it did not answer; one that does not parse counts as not answering),
    every sample labelled with its ``process``."""
    families: dict[str, Metric] = {}
    parsed = {name: _parse(text) for name, text in sorted(hosts.items())}

    def add(found: Iterable[Metric], name: str) -> None:
        for family in found:
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type)
                families[family.name] = merged
            for s in family.samples:
                labels = {**s.labels, "process": name}
                merged.samples.append(s._replace(labels=labels))

    add(own.collect(), process)
    for name, found in parsed.items():
        if found is not None:
            add(found, name)
    answered = GaugeMetricFamily(
        "picloud_metrics_hosts",
        "App hosts asked for their metrics in this scrape, by whether they answered",
        labels=["answered"],
    )
    count = sum(found is not None for found in parsed.values())
    answered.add_metric(["true"], count)
    answered.add_metric(["false"], len(parsed) - count)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([*families.values(), answered]))
    return generate_latest(registry)
