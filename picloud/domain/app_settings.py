"""Pure decisions on an app's settings: its CORS policy and the hosts
``http.fetch`` may reach. Each check names what is wrong (InvalidInput)."""

from __future__ import annotations

import re

from picloud.domain.commands import SetCors, SetFetchHosts
from picloud.domain.names import METHODS
from picloud.domain.records import AppSettingsRecord
from picloud.errors import InvalidInput
from picloud.events import Event, utcnow
from picloud.events.app import CorsPolicy, CorsSet, FetchHostsSet
from picloud.events.app_state import AppState

__all__ = [
    "MAX_ENTRIES",
    "check_host_pattern",
    "decide_set_cors",
    "decide_set_fetch_hosts",
    "decide_settings",
    "host_allowed",
    "parse_host_list",
    "settings_record",
]

MAX_ENTRIES = 100
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$|^\[[0-9a-f:.]+\]$")
_ORIGIN = re.compile(
    rf"^https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::\d{{1,5}})?$"
)
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
_MAX_AGE_S = 86_400


def _bounded(values: list[str], what: str) -> list[str]:
    if len(values) > MAX_ENTRIES:
        raise InvalidInput(f"at most {MAX_ENTRIES} {what}")
    return values


def check_cors(cors: CorsPolicy) -> CorsPolicy:
    """``cors`` normalised (lower-case origins and headers, upper-case methods)."""
    origins = [o.lower() for o in _bounded(cors.origins, "origins")]
    if not origins:
        raise InvalidInput("cors.origins must name at least one origin (or *)")
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise InvalidInput(
                f"cors origin {origin[:80]!r} is not scheme://host[:port] "
                "(http or https, no path) or *"
            )
    methods = [m.upper() for m in _bounded(cors.methods, "methods")]
    for method in methods:
        if method not in METHODS:
            raise InvalidInput(f"cors method {method[:20]!r} is not an HTTP method")
    headers = [h.lower() for h in _bounded(cors.headers, "headers")]
    for header in headers:
        if not _TOKEN.fullmatch(header):
            raise InvalidInput(f"cors header {header[:40]!r} is not a header name")
    if not 0 <= cors.max_age_s <= _MAX_AGE_S:
        raise InvalidInput(f"cors.max_age_s must be from 0 to {_MAX_AGE_S}")
    return CorsPolicy(
        origins=sorted(set(origins)),
        methods=sorted(set(methods)),
        headers=sorted(set(headers)),
        max_age_s=cors.max_age_s,
    )


def check_host_pattern(pattern: str) -> str:
    """A host ``http.fetch`` may reach: ``api.example.com``, ``*.example.com``
    (any subdomain), an IP address; lower-cased."""
    host = pattern.strip().lower()
    if not _HOST.fullmatch(host):
        raise InvalidInput(
            f"invalid host {pattern[:80]!r}: a host name, *.domain for its "
            "subdomains, or an IP address (no scheme, port or path)"
        )
    return host


def parse_host_list(configured: str) -> tuple[str, ...]:
    """The comma-separated hosts of a setting, checked."""
    return tuple(check_host_pattern(h) for h in configured.split(",") if h.strip())


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``host`` is one of ``patterns`` (empty: every host is)."""
    if not patterns:
        return True
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def decide_set_cors(state: AppState, command: SetCors) -> list[Event]:
    cors = None if command.cors is None else check_cors(command.cors)
    if cors == state.cors:
        return []
    return [CorsSet(at=utcnow(), app_id=state.app_id, cors=cors)]


def decide_set_fetch_hosts(state: AppState, command: SetFetchHosts) -> list[Event]:
    hosts = None
    if command.hosts is not None:
        hosts = sorted(
            {check_host_pattern(h) for h in _bounded(command.hosts, "hosts")}
        )
    current = None if state.fetch_hosts is None else list(state.fetch_hosts)
    if hosts == current:
        return []
    return [FetchHostsSet(at=utcnow(), app_id=state.app_id, hosts=hosts)]


def settings_record(
    state: AppState, default_hosts: tuple[str, ...]
) -> AppSettingsRecord:
    own = None if state.fetch_hosts is None else list(state.fetch_hosts)
    return AppSettingsRecord(
        app_id=state.app_id,
        cors=state.cors,
        fetch_allowed_hosts=own,
        fetch_hosts_in_force=list(default_hosts) if own is None else own,
    )


def decide_settings(state: AppState, command: SetCors | SetFetchHosts) -> list[Event]:
    """The events of a change to the app's settings (none if nothing changes)."""
    if isinstance(command, SetCors):
        return decide_set_cors(state, command)
    return decide_set_fetch_hosts(state, command)
