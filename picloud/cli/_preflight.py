"""What ``picloud serve`` checks before it starts anything: the ports free,
the data directory usable. A problem is one line naming the setting, not a
traceback twenty seconds into start-up."""

from __future__ import annotations

import errno
import socket
import tempfile

from picloud.config import Settings
from picloud.errors import ConfigError

__all__ = ["check_can_serve"]


def check_can_serve(settings: Settings, *, front_door: bool = True) -> None:
    """Raises ConfigError naming the variable to change."""
    _check_data_dir(settings)
    _check_cluster(settings, front_door=front_door)
    if not front_door:
        return
    apps_host = settings.apps_host or settings.http_host
    _check_port(settings.http_host, settings.http_port, "PICLOUD_HTTP_PORT")
    _check_port(apps_host, settings.apps_port, "PICLOUD_APPS_PORT")
    if settings.http_port and settings.http_port == settings.apps_port:
        raise ConfigError(
            f"PICLOUD_HTTP_PORT and PICLOUD_APPS_PORT are both {settings.http_port}:"
            " the admin API and the apps need an origin each"
        )


def _check_port(host: str, port: int, variable: str) -> None:
    if port == 0:
        return  # any free port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is in use; stop what listens there or"
                    f" set {variable}"
                ) from None
            raise ConfigError(
                f"cannot listen on {host}:{port} ({variable}): {e}"
            ) from None


def _check_data_dir(settings: Settings) -> None:
    path = settings.data_path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ConfigError(
            f"cannot use the data directory {path} (PICLOUD_DATA_DIR):"
            f" {e.strerror or e}"
        ) from None


def _check_cluster(settings: Settings, *, front_door: bool) -> None:
    """What joining a cluster needs: one database and one secret for all."""
    if settings.ray_address is None:
        if not front_door:
            raise ConfigError(
                "hosting apps only makes sense on a node of a cluster:"
                " give --join ADDRESS or set PICLOUD_RAY_ADDRESS"
            )
        if settings.app_hosts == 0:
            raise ConfigError("PICLOUD_APP_HOSTS=0: alone, PiCloud needs a host")
        return
    if not settings.database_url:
        raise ConfigError(
            "joining a cluster needs PICLOUD_DATABASE_URL: every node uses the"
            " same Postgres (the embedded one serves a single machine)"
        )
    if not settings.cluster_secret:
        raise ConfigError(
            "joining a cluster needs PICLOUD_CLUSTER_SECRET, the same on every"
            " node: front doors prove it to the app hosts"
        )
    if not front_door and settings.app_hosts == 0:
        raise ConfigError("PICLOUD_APP_HOSTS=0: this node would host nothing")
