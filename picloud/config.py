"""One typed, frozen Settings object, read once from ``PICLOUD_*`` variables.

Every setting has a default, so ``picloud serve`` works with nothing configured.
A malformed value is a :class:`~picloud.errors.ConfigError` that names the
variable, what it expected and what it got. This is the only module that reads
``os.environ``; everything else receives ``Settings`` explicitly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from picloud.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "LogFormat",
    "Settings",
    "load_settings",
    "prepare_ray_environment",
]

ENV_PREFIX = "PICLOUD_"

Positive = Annotated[int, Meta(gt=0)]
NonNegative = Annotated[int, Meta(ge=0)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "text"]

KIB = 1024
MIB = 1024 * KIB


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything a deployment can configure; field ``x`` is ``PICLOUD_X``."""

    # -- where things are ------------------------------------------------------
    database_url: str | None = None
    """Postgres to use; unset means the embedded server under ``data_dir``."""
    ray_address: str | None = None
    """Ray cluster to join (``serve --join`` sets it); unset means a local Ray
    started by ``serve``, bound to 127.0.0.1."""
    ray_namespace: str = "picloud"
    """Every PiCloud process of one cluster must use the same namespace."""
    ray_temp_dir: str | None = None
    """When joining: the ``--temp-dir`` of this machine's Ray node, which picks
    the node to attach to when several share a machine; unset: Ray's default."""
    data_dir: str = ".picloud"
    http_host: str = "127.0.0.1"
    http_port: Port = 8080
    """The admin listener: admin API, auth, health, dashboard; never app content."""
    apps_host: str | None = None
    """Where the apps listener binds; unset means ``http_host``."""
    apps_port: Port = 8081
    """The apps listener: ``/apps/{slug}/…`` and ``{slug}.{domain}``, on an
    origin of their own, so a script never sees the admin's cookies."""
    domain: str | None = None
    """When set, ``Host: {slug}.{domain}`` on the apps listener reaches an app."""
    cluster_secret: str | None = None
    """What front doors prove to app hosts before calling them; unset means
    one generated into ``data_dir`` on first start (set it when clustered)."""
    redact_headers: str = ""
    """Header names (comma-separated) redacted, like Authorization and Cookie,
    before a request is stored (async runs, dead letters)."""
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"
    """``json``: one JSON object per line (time, level, logger, message and
    the record's fields), for a log collector; ``text``: for people."""
    access_log: bool = True
    """A line per request (logger ``picloud.access``, at INFO); off when a
    proxy in front keeps its own."""

    # -- database ---------------------------------------------------------------
    db_pool_min: Positive = 2
    """Connections a pool opens at start; it keeps no floor (see below)."""
    db_pool_max: Positive = 10
    db_statement_timeout_ms: Positive = 30_000
    db_idle_in_transaction_timeout_ms: Positive = 10_000
    db_connect_timeout_ms: Positive = 1_000
    """A connection attempt gives up after this: a request never waits longer
    on a server that does not answer."""
    db_idle_connection_ms: Positive = 5_000
    """Pool and NOTIFY connections idle this long are closed."""
    db_connection_max_age_s: Positive = 10
    """Pool and LISTEN connections are replaced after this long, busy or not,
    so that a smart shutdown of Postgres (which waits for every session, and
    refuses new ones) completes within about this."""
    event_poll_interval_ms: Positive = 5_000
    """Backstop poll of log subscribers; LISTEN/NOTIFY wakes them sooner."""
    events_tail_poll_ms: Positive = 500
    """How often a live tail of the events API (and ``picloud events
    --follow``) reads the log: one indexed read per tail. Not woken by every
    commit, which would wake the front door for each invocation of every app."""
    events_tail_heartbeat_s: Positive = 15
    """A live tail with nothing to send sends a comment this often, so
    proxies keep the connection and a gone client is noticed."""

    # -- actors -----------------------------------------------------------------
    app_hosts: NonNegative = 2
    """AppHost Ray actors that each PiCloud node runs (pinned to it); the apps
    are placed over the hosts of every node. 0: a front door that hosts no
    apps (only when joining a cluster)."""
    host_heartbeat_interval_ms: Positive = 500
    """How often a host records that it is alive, and front doors re-read
    which hosts are."""
    host_heartbeat_timeout_ms: Positive = 2_000
    """A host silent this long is gone (its node stopped or died): its apps are
    placed on the other hosts and activate there from the log."""
    app_idle_timeout_s: Positive = 600
    app_host_max_active: Positive = 2_000
    """Active apps per host before the least recently used is passivated."""
    app_kv_cache_entries: Positive = 512
    """Durable KV values an active app keeps in memory (small values only)."""
    app_snapshot_every: Positive = 500
    """Take a control-state snapshot after this many events of an app."""
    host_crash_quarantine_after: Positive = 3
    """Host crashes an app may cause within the window before it gets its own."""
    host_crash_window_s: Positive = 600

    # -- HTTP -------------------------------------------------------------------
    sync_timeout_ms: Positive = 30_000
    max_request_bytes: Positive = 1 * MIB
    body_read_timeout_ms: Positive = 10_000
    """How long an admin request's body may take to arrive before the caller
    gets 408 and the connection closes (a stalled client holds nothing)."""

    # -- scripts ----------------------------------------------------------------
    script_max_instructions: Positive = 50_000_000
    script_timeout_ms: Positive = 5_000
    """Wall-clock budget of one invocation, checked by the Lua hook and driver."""
    script_hard_deadline_grace_ms: Positive = 2_000
    """After timeout + grace the host process is killed (second sandbox layer)."""
    script_max_memory_bytes: Positive = 32 * MIB
    script_max_call_depth: Positive = 200
    script_max_value_bytes: Positive = 1 * MIB
    script_max_value_depth: Positive = 32
    script_max_log_bytes: Positive = 64 * KIB
    script_max_response_bytes: Positive = 4 * MIB
    script_cache_size: Positive = 256
    script_threads: Positive = 8
    """Worker threads per host for the scripts that need more than a slice."""
    script_inline_slice_ms: Positive = 10
    """How much CPU time a script may use on a host's event loop; past it, it
    is stopped and run again on a worker thread (so it cannot stall other
    apps). CPU, not wall time: a loop the OS did not schedule for a while is
    no sign of a CPU-bound script."""
    app_cpu_budget_ms_per_s: Positive = 500
    """The CPU an app may use in its scripts over time (ms per second); beyond
    it and its burst its requests answer 429 until the budget refills."""
    app_cpu_burst_ms: Positive = 2_000
    module_cache_size: Positive = 512
    module_import_depth_max: Positive = 8
    record_requests: bool = True
    """Keep each sync route run's request (credentials redacted) and each
    run's response in its execution record, so what-if can run it again."""
    record_linger_ms: NonNegative = 5
    """How long the execution records of read-only runs wait for company
    before their commit when nothing else is pending (0: never). A crash
    can lose the records of this last interval, never a write or a value a
    reply showed."""
    record_body_max_bytes: NonNegative = 16 * KIB
    """A request with a larger body is not kept; a larger response body is
    kept as its size and SHA-256."""
    what_if_max_invocations: Positive = 200
    """The most invocations one what-if runs again (a larger range is refused)."""
    what_if_timeout_ms: Positive = 120_000
    """How long a what-if may take, its read of the app's history included."""

    # -- stores -----------------------------------------------------------------
    kv_max_key_bytes: Positive = 1_024
    docs_max_in_items: Positive = 100
    docs_max_limit: Positive = 1_000

    # -- triggers and retention -------------------------------------------------
    max_trigger_depth: Positive = 8
    trigger_retry_max_attempts: Positive = 5
    trigger_retry_base_ms: Positive = 500
    trigger_retry_max_ms: Positive = 60_000
    trigger_retry_jitter: Fraction = 0.2
    dead_letter_retention_days: Positive = 30
    abandoned_executions_retention_days: Positive = 7
    retention_sweep_interval_s: Positive = 3_600
    delivery_wake_interval_ms: Positive = 1_000
    """How often the front door wakes apps whose retries are due."""

    # -- outbound HTTP: http.fetch ---------------------------------------------------
    fetch_allowed_hosts: str = ""
    """Hosts (comma-separated; ``*.example.com`` for subdomains) every app may
    fetch unless it sets its own list; empty: any public host. Private,
    loopback, link-local and metadata addresses are refused whatever the list."""
    fetch_allow_loopback_ports: str = ""
    """Ports (comma-separated) on loopback that http.fetch may reach despite the
    rule above: for local development and tests. Empty (the default): none."""
    fetch_timeout_ms: Positive = 10_000
    """The longest a fetch may take (never past the run's own time limit)."""
    fetch_max_request_bytes: Positive = 1 * MIB
    fetch_max_response_bytes: Positive = 1 * MIB
    fetch_max_redirects: NonNegative = 5
    fetch_max_calls_per_run: Positive = 20

    # -- secrets ------------------------------------------------------------------
    secret_key: str | None = None
    """The AES-256 key (base64, 32 bytes) that encrypts apps' secrets; unset
    means one generated into ``data_dir`` on first start (set it when
    clustered: every process must hold the same key)."""

    # -- the CLI as a client of a running server (deploy, pull, logs…) ------------
    url: str = ""
    """The admin listener to talk to; empty: ``http://127.0.0.1:{http_port}``."""
    api_key: str = ""
    """The API key the CLI sends (``Authorization: Bearer``)."""

    # -- identity -----------------------------------------------------------------
    session_ttl_s: Positive = 12 * 3600
    login_max_failures: Positive = 5
    """Failed logins per user or address before each further try is slowed."""
    login_throttle_window_s: Positive = 300

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()


def kept_secret(settings: Settings, file: str, make: Callable[[], str]) -> str:
    """The secret in the data directory's ``file``, made (``make``) and
    written there the first time, readable by its owner only: the same at
    every start of this machine's processes."""
    path = settings.data_path / file
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if not secret:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    return secret


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read ``PICLOUD_*`` variables into :class:`Settings`.

    Raises:
        ConfigError: an unknown ``PICLOUD_`` variable or a malformed value,
            naming the variable.
    """
    source = os.environ if env is None else env
    raw = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in source.items()
        if key.startswith(ENV_PREFIX) and not key.startswith(_NOT_SETTINGS)
    }
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(_explain(str(e), raw)) from e


# Variables that share the prefix but are read by tests or tools, not by Settings.
_NOT_SETTINGS = ("PICLOUD_TEST_", "PICLOUD_BENCH_")


def _explain(message: str, raw: Mapping[str, str]) -> str:
    """Turn msgspec's ``... - at `$.http_port``` into the variable and its value."""
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        if message.startswith("Object contains unknown field `"):
            field = message.split("`")[1]
            return f"unknown setting {ENV_PREFIX}{field.upper()}"
        return message
    field = where.rstrip("`").split(".")[0].split("[")[0]
    return f"{ENV_PREFIX}{field.upper()}={raw.get(field, '')!r}: {text}"


def prepare_ray_environment(
    *, local: bool, token: str, log_format: LogFormat = "text"
) -> None:
    """Environment for the Ray that ``picloud serve`` starts or joins; set
    before Ray is imported (Ray reads some of it at import), inherited by
    every Ray process started from here. A variable the operator set wins.

    - No usage statistics sent home: a self-hosted server must not phone out.
    - Local: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray take 127.0.0.1
      as the node's address, so its servers listen on loopback only (without
      it Ray 2.60 resolves even an explicit 127.0.0.1 to the machine's
      address and listens on every interface); and token authentication with
      ``token``, a secret of this process that is never written to disk.
    - The hosts' log lines, which Ray forwards to this process's stderr: no
      colour codes around Ray's ``(pid=…)`` prefix unless stderr is a
      terminal; with ``log_format`` json, no prefix and no merging of
      repeated lines, so each forwarded line is the host's JSON as written.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not sys.stderr.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    if log_format == "json":
        os.environ.setdefault("RAY_DISABLE_WORKER_LOG_PREFIX", "1")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        os.environ.setdefault("RAY_AUTH_TOKEN", token)
