"""Ray Serve settings that make the gateway fast (see bench/gateway.py for the figures), and the
malloc setting that keeps its replicas' memory flat under load (bench/soak.py).

They must be in the environment of whatever starts Ray, so they are applied before the graph is
built; a value the user already exported wins. HAProxy mode binds 0.0.0.0: its config and admin
socket go under a per-user runtime folder instead of the shared /tmp/haproxy-serve. Before Ray
starts, what a killed Ray left running (graphs/leftovers.py) is ended, and SIGTERM is made to
stop `serve run` as Ctrl-C does.
"""

import os
import signal
import tempfile
import threading
from pathlib import Path

import ray

from graphs.leftovers import end_stale_processes

FAST_SERVE_ENV = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_worker_niceness": "0",
    # glibc gives each thread that allocates an arena of its own, up to 8 per core; a replica's
    # threads (Ray's core worker, gRPC, asyncio's executor) fragment them, and its RSS grew ~0.6 MiB
    # a minute under the soak's load, none of it in Python's heap. Two arenas keep it flat.
    "MALLOC_ARENA_MAX": "2",
}


def haproxy_folder() -> Path:
    return Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"raystack-haproxy-{os.getuid()}"


def apply_fast_serve_defaults() -> None:
    """Run before Ray starts: the settings into this environment, and what a killed Ray left ended."""
    end_stale_processes(haproxy_folders())
    drain_on_sigterm()
    if os.environ.get("RAYSTACK_SERVE_DEFAULTS") == "1":
        return
    for name, value in FAST_SERVE_ENV.items():
        os.environ.setdefault(name, value)
    if os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "1":
        base = haproxy_folder()
        os.environ.setdefault("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", str(base / "haproxy.cfg"))
        os.environ.setdefault("RAY_SERVE_HAPROXY_SOCKET_PATH", str(base / "admin.sock"))
        os.environ.setdefault("RAY_SERVE_HAPROXY_SERVER_STATE_BASE", str(base))
        os.environ.setdefault("RAY_SERVE_HAPROXY_SERVER_STATE_FILE", str(base / "server-state"))


def _sigterm_as_ctrl_c() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def drain_on_sigterm() -> None:
    """`serve run` drains the graph on Ctrl-C (KeyboardInterrupt: `serve.shutdown()`, each replica
    finishing its requests and flushing its stores), but ray.init makes SIGTERM exit at once, and the
    replicas die mid-request. Once ray.init has run in this process, SIGTERM raises KeyboardInterrupt
    instead, so `kill`, systemd and `docker stop` stop it as Ctrl-C does."""
    if ray.is_initialized():
        return
    hooks = ray._private.worker._post_init_hooks
    if _sigterm_as_ctrl_c not in hooks:
        hooks.append(_sigterm_as_ctrl_c)


# Where Serve keeps HAProxy's files unless the RAY_SERVE_HAPROXY_* variables move them.
SERVE_HAPROXY_FOLDER = Path("/tmp/haproxy-serve")


def haproxy_folders() -> tuple[Path, ...]:
    """The HAProxy folders of the graphs (a user's runtime folder) and of Serve's default."""
    return haproxy_folder(), SERVE_HAPROXY_FOLDER
