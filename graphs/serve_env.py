"""Ray Serve settings that make the gateway fast (see bench/gateway.py for the figures).

They must be in the environment of whatever starts Ray, so they are applied before the graph is
built; a value the user already exported wins. HAProxy mode binds 0.0.0.0: its config and admin
socket go under a per-user runtime folder instead of the shared /tmp/haproxy-serve.
"""

import os
import tempfile
from pathlib import Path

FAST_SERVE_ENV = {
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_worker_niceness": "0",
}


def apply_fast_serve_defaults() -> None:
    if os.environ.get("RAYSTACK_SERVE_DEFAULTS") == "1":
        return
    for name, value in FAST_SERVE_ENV.items():
        os.environ.setdefault(name, value)
    if os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "1":
        base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"raystack-haproxy-{os.getuid()}"
        os.environ.setdefault("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", str(base / "haproxy.cfg"))
        os.environ.setdefault("RAY_SERVE_HAPROXY_SOCKET_PATH", str(base / "admin.sock"))
        os.environ.setdefault("RAY_SERVE_HAPROXY_SERVER_STATE_BASE", str(base))
        os.environ.setdefault("RAY_SERVE_HAPROXY_SERVER_STATE_FILE", str(base / "server-state"))
