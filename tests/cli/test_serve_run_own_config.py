"""`serve run graphs.builder:build config=<run config>` as a user types it, with a run config of
one's own: the CLI starts Ray itself with the fast Serve settings, serves on 127.0.0.1:8000 until
Ctrl-C, and a `serve run` killed with SIGKILL does not keep the next one from starting."""

import subprocess

import httpx
import pytest
import yaml

from bench.mock_openai import MockConfig, start_mock_server
from tests.cli.conftest import BASE, assert_nothing_running
from tests.cli.processes import Command, ray_processes, user_env, wait_for_nothing_left


@pytest.fixture(scope="module")
def own_config(tmp_path_factory):
    """A run config of one's own: an OpenAI-compatible remote (a loopback stand-in), SQLite state."""
    assert_nothing_running()
    base_url, stop = start_mock_server(config=MockConfig(reply="from the remote"))
    state = tmp_path_factory.mktemp("own-config")
    path = state / "run.yaml"
    path.write_text(yaml.safe_dump({
        "apis": ["inference", "models"],
        "providers": {"inference": [{"provider_id": "remote", "provider_type": "remote::openai",
                                     "config": {"base_url": base_url, "api_key": "sk-stand-in"}}]},
        "registered_resources": {"models": [{"model_id": "remote-model", "provider_id": "remote",
                                             "provider_model_id": "mock-model"}]},
        "storage": {"backends": {"kv": {"type": "kv_sqlite", "db_path": str(state / "kv.db")}},
                    "stores": {"metadata": {"backend": "kv", "namespace": "registry"}}},
    }))
    yield path
    stop()


def chat() -> httpx.Response:
    return httpx.post(f"{BASE}/v1/chat/completions", timeout=30, json={
        "model": "remote-model", "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.timeout(600)
def test_serve_run_of_ones_own_config_recovers_from_a_killed_serve_run(own_config, tmp_path):
    argv = ["serve", "run", "graphs.builder:build", f"config={own_config}"]
    first = Command(argv, user_env(), tmp_path / "first.log")
    try:
        first.wait_until_answering(f"{BASE}/v1/models", timeout_s=240)
        assert chat().json()["choices"][0]["message"]["content"] == "from the remote"
        assert "RAY_SERVE_ENABLE_HA_PROXY" not in user_env()
        assert any("haproxy" in p for p in ray_processes()), "the fast settings (HAProxy) are on"
        first.kill()
    finally:
        first.stop()
    subprocess.run(["ray", "stop", "--force"], env=user_env(), capture_output=True, timeout=120)
    left = [p for p in ray_processes() if "haproxy" in p]
    print("left by the killed serve run, after `ray stop --force`:", left)
    second = Command(argv, user_env(), tmp_path / "second.log")
    try:
        second.wait_until_answering(f"{BASE}/v1/models", timeout_s=240)
        assert chat().status_code == 200
        for process in left:
            assert f"ending pid {process.split()[0]} " in second.output()
        assert second.ctrl_c() == 0, second.output()[-3000:]
    finally:
        second.stop()
    wait_for_nothing_left()
