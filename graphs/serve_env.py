"""Ray Serve settings that make the gateway fast (see bench/gateway.py for the figures).

They must be in the environment of whatever starts Ray, so they are applied before the graph is
built; a value the user already exported wins. HAProxy mode binds 0.0.0.0: its config and admin
socket go under a per-user runtime folder instead of the shared /tmp/haproxy-serve.

HAProxy outlives the Ray that started it when that Ray is killed or stopped (`kill -9` of `serve
run`, `ray stop`), and holds the ports the next start needs. `serve run` of a graph ends such
HAProxy processes itself; before `ray start`, run

    python -m graphs.serve_env
"""

import logging
import os
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

FAST_SERVE_ENV = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_worker_niceness": "0",
}


def haproxy_folder() -> Path:
    return Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"raystack-haproxy-{os.getuid()}"


def apply_fast_serve_defaults() -> None:
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
        end_stale_haproxy(base)


# Where Serve keeps HAProxy's files unless the RAY_SERVE_HAPROXY_* variables move them.
SERVE_HAPROXY_FOLDER = Path("/tmp/haproxy-serve")


def end_stale_haproxy(*folders: Path) -> list[int]:
    """End the HAProxy processes whose config lies under `folders` and whose Ray actor is gone: they
    run outside the process group of what started them, so neither a SIGKILL of `serve run` nor
    `ray stop --force` ends them. Returns their pids."""
    import psutil

    stale = []
    for proc in psutil.process_iter(["ppid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if not cmdline or os.path.basename(cmdline[0]) != "haproxy":
            continue
        if not any(arg.startswith(f"{folder}{os.sep}") for arg in cmdline for folder in folders):
            continue
        try:
            parent = psutil.Process(proc.info["ppid"]).cmdline()
        except psutil.Error:
            parent = []
        if not (parent and parent[0].startswith("ray::")):  # its HAProxyManager actor is gone
            stale.append(proc)
    for proc in stale:
        logger.warning("ending HAProxy (pid %d): the Ray that started it is gone, and it holds the ports", proc.pid)
        proc.terminate()
    _, alive = psutil.wait_procs(stale, timeout=5)
    for proc in alive:
        proc.kill()
    return [proc.pid for proc in stale]


if __name__ == "__main__":
    ended = end_stale_haproxy(haproxy_folder(), SERVE_HAPROXY_FOLDER)
    print(f"ended stale HAProxy processes: {ended}" if ended else "no stale HAProxy process")
