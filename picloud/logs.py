"""How every PiCloud process writes its log: text or JSON lines on stderr.

``PICLOUD_LOG_FORMAT=json`` writes one JSON object per line: ``time`` (RFC
3339 in UTC with ``Z``), ``level``, ``logger``, ``message``, the record's
extra fields (``logger.info(..., extra={"status": 200})``) and, for an
exception, ``exception`` (its traceback as one string). ``text`` (the
default) writes ``time level logger: message`` and the extra fields as
``key=value``. Neither writes colour codes. The CLI configures its process;
each app host configures its own (Ray runs it in a process of its own).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

from picloud.config import LogFormat

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "log_handler"]

# The attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_encoder = msgspec.json.Encoder()


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    """The fields from ``extra=``; not a library's private ones (Ray adds
    ``_ray_timestamp_ns`` to every record of a process it runs in)."""
    return {
        k: v
        for k, v in record.__dict__.items()
        if k not in _STANDARD and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record; see the module docstring."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extra(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return _encoder.encode(line).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value…``, one record per line but
    for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        text = f"{_time(record)} {record.levelname} {record.name}: {message}"
        extra = _extra(record)
        if extra:
            text += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def log_handler(fmt: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing ``fmt`` to ``stream`` (stderr when None)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


def configure_logging(
    level: str | int, fmt: LogFormat, *, access_log: bool = True
) -> None:
    """The root logger of this process writes ``fmt`` to stderr from
    ``level``; the access log too unless ``access_log`` is off."""
    logging.basicConfig(level=level, handlers=[log_handler(fmt)], force=True)
    if not access_log:
        logging.getLogger("picloud.access").setLevel(logging.WARNING)
    # The embedded server's library narrates every pg_ctl call at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
