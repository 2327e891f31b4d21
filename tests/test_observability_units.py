"""The pure parts of observability: merging hosts' metrics, the log formats,
and the setting that picks one."""

from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from picloud.config import load_settings
from picloud.errors import ConfigError
from picloud.logs import configure_logging, log_handler
from picloud.metrics import exposition


def _samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_hosts_samples_join_the_front_doors_each_with_its_process() -> None:
    own = CollectorRegistry()
    Counter("picloud_runs", "runs", ["status"], registry=own).labels("ok").inc(2)
    host = CollectorRegistry()
    Counter("picloud_runs", "runs", ["status"], registry=host).labels("ok").inc(5)
    merged = _samples(
        exposition(
            own,
            {
                "host-a": generate_latest(host).decode(),
                "host-b": None,
                "host-c": "this is { not the text format",
            },
        )
    )
    ok = frozenset({("status", "ok")})
    assert merged["picloud_runs_total", ok | {("process", "front-door")}] == 2
    assert merged["picloud_runs_total", ok | {("process", "host-a")}] == 5
    assert merged["picloud_metrics_hosts", frozenset({("answered", "true")})] == 1
    assert merged["picloud_metrics_hosts", frozenset({("answered", "false")})] == 2


def _fail() -> None:
    raise ValueError("boom")


def _record(fmt: str, **extra: object) -> str:
    out = io.StringIO()
    logger = logging.getLogger(f"picloud.test.{fmt}")
    logger.propagate = False
    handler = log_handler("json" if fmt == "json" else "text", out)
    logger.addHandler(handler)
    try:
        try:
            _fail()
        except ValueError:
            logger.exception("failed %s", "here", extra=extra)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_a_json_line_has_the_fields_and_the_traceback() -> None:
    line = json.loads(_record("json", request_id="r-1", status=500, _ray_ns=1))
    assert line["level"] == "ERROR"
    assert line["logger"] == "picloud.test.json"
    assert line["message"] == "failed here"
    assert line["time"].endswith("Z")
    assert (line["request_id"], line["status"]) == ("r-1", 500)
    assert "ValueError: boom" in line["exception"]
    assert "_ray_ns" not in line  # a library's private field, not ours


def test_text_has_the_fields_and_no_colour() -> None:
    text = _record("text", request_id="r-2")
    assert "ERROR picloud.test.text: failed here request_id=r-2" in text
    assert "\x1b[" not in text


def test_the_log_format_setting() -> None:
    assert load_settings({}).log_format == "text"
    assert load_settings({"PICLOUD_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ConfigError, match="PICLOUD_LOG_FORMAT"):
        load_settings({"PICLOUD_LOG_FORMAT": "xml"})


def test_the_access_log_can_be_turned_off_alone() -> None:
    access = logging.getLogger("picloud.access")
    root = logging.getLogger()
    kept = (root.level, list(root.handlers), access.level)
    try:
        configure_logging("INFO", "text", access_log=False)
        assert not access.isEnabledFor(logging.INFO)
        assert logging.getLogger("picloud.http").isEnabledFor(logging.INFO)
        assert load_settings({"PICLOUD_ACCESS_LOG": "false"}).access_log is False
    finally:
        root.setLevel(kept[0])
        root.handlers[:] = kept[1]
        access.setLevel(kept[2])
