"""The Ray that ``picloud serve`` runs on: a lean local node, or a cluster.

Joining (``PICLOUD_RAY_ADDRESS``, ``serve --join``): attach to the cluster's
node on this machine (``PICLOUD_RAY_TEMP_DIR`` picks it when several share
the machine), in the cluster's namespace.

Local (nothing configured): a head node bound to 127.0.0.1 (see
:func:`~picloud.config.prepare_ray_environment`) without the processes
PiCloud does not use. ``ray.init(address="local")`` starts them all and
offers no switch for three of them, so the node is made the way ``ray.init``
makes it (``ray._private.node.Node`` and its ``RayParams``, which ``ray
start`` also uses) with these left out — each measured on a 2-core machine
(USS when idle; start-up under load):

- the dashboard's API server (~52 MB, and ray.init waits for it to come up):
  Ray's jobs and state API, which PiCloud does not use;
- the autoscaler's monitor (~44 MB): nothing to scale on one machine;
- the log monitor (~42 MB): it copies every worker's output to the driver,
  so the app hosts' log lines stay in Ray's session logs
  (``<ray temp dir>/session_latest/logs/worker-*``), which serve names at start.

Prestarted workers stay (one per CPU): alone they slow Ray's own start-up,
but serve starts Ray while the embedded Postgres starts, and the workers
Ray prestarts meanwhile become the control plane and the hosts sooner than
workers started on demand (measured: a median 6.8 s against 9.4 s to a
healthy serve, on a loaded 2-core machine).

Ray's two agents stay (~95 MB together): the raylet fate-shares with them
and builds their command lines itself. If Ray's internals no longer take
these options, serve falls back to ``ray.init(address="local")`` and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import ray

from picloud.config import Settings

__all__ = ["start_ray"]

log = logging.getLogger(__name__)


def start_ray(settings: Settings) -> Callable[[], None]:
    """Start or join Ray as the settings say; returns the function that stops it."""
    if settings.ray_address is not None:
        ray.init(
            address=settings.ray_address,
            namespace=settings.ray_namespace,
            logging_level=logging.WARNING,
            _temp_dir=settings.ray_temp_dir,
        )
        return ray.shutdown
    try:
        node = _lean_local_node()
    except (ImportError, AttributeError, TypeError, ValueError) as e:
        log.warning("Ray's internals changed (%s); starting its default local node", e)
        ray.init(
            address="local",
            namespace=settings.ray_namespace,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
        return ray.shutdown
    ray.init(
        address=node.address,
        namespace=settings.ray_namespace,
        logging_level=logging.WARNING,
    )
    logs = f"{node.get_session_dir_path()}/logs"
    log.info("Ray's logs, the app hosts' among them: %s", logs)

    def stop() -> None:
        ray.shutdown()
        node.destroy_external_storage()
        node.kill_all_processes(check_alive=False, allow_graceful=True)

    return stop


def _lean_local_node() -> Any:
    """A head node as ray.init makes one, without what the module docstring
    lists; its processes die with this one (Ray's reaper or fate-sharing)."""
    from ray._private import node as ray_node  # noqa: PLC0415  # private: see above
    from ray._private import parameter  # noqa: PLC0415

    class LeanNode(ray_node.Node):
        def start_api_server(self, **_: Any) -> None:
            """No dashboard API server (see the module docstring)."""

    # Ray annotates include_log_monitor as str; `ray start` passes a bool.
    options: dict[str, Any] = {
        "node_ip_address": "127.0.0.1",
        "include_dashboard": False,
        "no_monitor": True,
        "include_log_monitor": False,
    }
    params = parameter.RayParams(**options)
    return LeanNode(
        params,
        head=True,
        shutdown_at_exit=False,
        spawn_reaper=True,
        ray_init_cluster=True,
    )
