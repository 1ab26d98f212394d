"""Shared fixtures. Ray starts once per test session (only when a test needs it)."""

import os
import socket
import subprocess
import sys
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(items):
    """The CLI tests start and stop Ray themselves: they run before any test starts the session's."""
    items.sort(key=lambda item: "cli" not in item.path.relative_to(item.config.rootpath).parts[:2])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


METRICS_REPORT_INTERVAL_MS = 1000


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """A Milvus server (milvus-lite's gRPC server) on a free loopback port; yields its URI."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--data-dir", str(tmp_path_factory.mktemp("milvus"))])
    deadline = time.monotonic() + 60
    while not listening(port):
        assert server.poll() is None and time.monotonic() < deadline, "the Milvus server did not start"
        time.sleep(0.5)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def ray_cluster():
    """One Ray cluster per session: a head node with 2 CPUs, to which multi-node tests add (and
    remove) worker nodes; every node exports Prometheus metrics on its own port."""
    from graphs.serve_env import apply_fast_serve_defaults

    apply_fast_serve_defaults()
    # Replicas of a deleted app drain for 30 s by default; tests redeploy, they need not wait.
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")
    # HAProxy's own ports, free ones so a server left running on this machine cannot collide.
    os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(free_port()))
    os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(free_port()))
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2,
        "include_dashboard": False,
        "object_store_memory": 256 * 1024**2,
        "metrics_export_port": free_port(),
        "_system_config": {"metrics_report_interval_ms": METRICS_REPORT_INTERVAL_MS},
    })
    ray.init(address=cluster.address, runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="session")
def serve_session(ray_cluster):
    """Serve on a free HTTP port, its proxy on the head node only (worker nodes added by tests run on
    this machine too, where a second proxy could not bind the port); yields the base URL."""
    from ray import serve

    port = free_port()
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
