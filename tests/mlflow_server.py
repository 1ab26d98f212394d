"""A real MLflow tracking server on a free loopback port (`mlflow server`), which a test can stop
and start again on the same database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

START_TIMEOUT_S = 120


class MLflowServer:
    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.folder / "mlflow-server.log", "ab")
        self.process = subprocess.Popen(
            ["mlflow", "server", "--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1", "--default-artifact-root", str(self.folder / "artifacts")],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._healthy():
            assert self.process.poll() is None, f"mlflow server exited; see {self.folder / 'mlflow-server.log'}"
            assert time.monotonic() < deadline, f"mlflow server did not answer within {START_TIMEOUT_S} s"
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and its workers
            self.process.wait(timeout=30)
            self.process = None

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
