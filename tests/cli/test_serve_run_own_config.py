"""`serve run graphs.builder:build config=<run config>` as a user types it, with a run config of
one's own: the CLI starts Ray itself with the fast Serve settings and serves on 127.0.0.1:8000; a
`serve run` killed with SIGKILL does not keep the next one from starting, and one sent SIGTERM under
load drains as on Ctrl-C: every answered completion stored, every stream finished."""

import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter

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
    base_url, stop = start_mock_server(config=MockConfig(reply="from the remote", chunks=4, chunk_delay_s=0.05))
    state = tmp_path_factory.mktemp("own-config")
    path = state / "run.yaml"
    path.write_text(yaml.safe_dump({
        "apis": ["inference", "models"],
        "providers": {"inference": [{"provider_id": "remote", "provider_type": "remote::openai",
                                     "config": {"base_url": base_url, "api_key": "sk-stand-in"}}]},
        "registered_resources": {"models": [{"model_id": "remote-model", "provider_id": "remote",
                                             "provider_model_id": "mock-model"}]},
        "storage": {"backends": {"kv": {"type": "kv_sqlite", "db_path": str(state / "kv.db")},
                                 "sql": {"type": "sql_sqlite", "db_path": str(state / "sql.db")}},
                    "stores": {"metadata": {"backend": "kv", "namespace": "registry"},
                               "inference": {"backend": "sql", "table_name": "chat_completions"}}},
    }))
    yield path
    stop()


def chat() -> httpx.Response:
    return httpx.post(f"{BASE}/v1/chat/completions", timeout=30, json={
        "model": "remote-model", "messages": [{"role": "user", "content": "hi"}]})


class Clients:
    """Clients calling chat, half of them streaming, until told to stop; keeps the ids of answers
    read whole, of streams seen to end with `[DONE]` and of streams cut after their first chunk."""

    def __init__(self, count: int = 4):
        self.answered: list[str] = []
        self.streamed: list[str] = []
        self.cut_streams: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(n % 2 == 1,)) for n in range(count)]
        for thread in self._threads:
            thread.start()

    def _loop(self, stream: bool) -> None:
        body = {"model": "remote-model", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        with httpx.Client(base_url=BASE, timeout=30) as client:
            while not self._stop.is_set():
                lines: list[str] = []
                try:
                    with client.stream("POST", "/v1/chat/completions", json=body) as reply:
                        if reply.status_code != 200:
                            self.errors.append(str(reply.status_code))
                        elif not stream:
                            self.answered.append(json.loads(reply.read())["id"])
                        else:
                            for line in reply.iter_lines():
                                lines += [line] if line.startswith("data: ") else []
                            (self.streamed if lines[-1] == "data: [DONE]" else self.cut_streams).append(
                                json.loads(lines[0][6:])["id"])
                except httpx.HTTPError as exc:
                    self.errors.append(type(exc).__name__)
                    if lines:
                        self.cut_streams.append(json.loads(lines[0][6:])["id"])
                    time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def stored_completions(state) -> dict[str, dict]:
    with sqlite3.connect(state / "sql.db") as db:
        return {row_id: json.loads(record) for row_id, record in db.execute("SELECT id, record FROM chat_completions")}


@pytest.mark.timeout(600)
def test_serve_run_of_ones_own_config_recovers_from_a_killed_serve_run_and_drains_on_sigterm(own_config, tmp_path):
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
        clients = Clients()
        try:
            time.sleep(5)
            assert clients.answered and clients.streamed, clients.errors
            second.proc.send_signal(signal.SIGTERM)  # `kill <pid>`, as systemd or `docker stop` sends it
            assert second.proc.wait(timeout=120) == 0, second.output()[-3000:]
        finally:
            clients.stop()
    finally:
        second.stop()
    wait_for_nothing_left()
    print(f"under SIGTERM: {len(clients.answered)} answers, {len(clients.streamed)} whole streams, "
          f"{len(clients.cut_streams)} cut streams read; errors: {Counter(clients.errors)}")
    stored = stored_completions(own_config.parent)
    assert set(clients.answered) | set(clients.streamed) <= set(stored)
    assert all(stored.get(stream_id, {}).get("incomplete_details") for stream_id in clients.cut_streams)
