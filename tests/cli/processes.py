"""Commands run as a user runs them in a terminal: in a process group of their own (a terminal's
Ctrl-C signals the whole foreground group), with their output in a log the failures quote."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]


def user_env(**extra: str) -> dict[str, str]:
    """This machine's environment less what the test session added for its own Ray (a user's shell
    has neither the hub switched off nor Serve's fast settings exported: the graphs set those)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "RAYSTACK_", "PYTEST_")) and k not in ("HF_HUB_OFFLINE",)}
    # The shell of an activated virtual environment: its commands (serve, ray) first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # The object store is allocated lazily, but Ray sizes /dev/shm's share by it: keep it small here.
    env["RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION"] = "0.02"
    return {**env, **extra}


class Command:
    """A long-running command (`serve run ...`) started as from a shell prompt."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO):
        self.args = args
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_answering(self, url: str, timeout_s: float) -> None:
        """Until GET `url` answers 200; fails with the command's output if it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{' '.join(self.args)} exited {self.proc.returncode}:\n{self.output()[-4000:]}")
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise AssertionError(f"{' '.join(self.args)} did not answer {url} in {timeout_s} s:\n{self.output()[-4000:]}")

    def ctrl_c(self, timeout_s: float = 120) -> int:
        """SIGINT to the command's process group, as Ctrl-C in its terminal; its exit code."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self._out.close()

    def kill(self) -> None:
        """`kill -9 <pid>` of the command alone: what it started is left as it is."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        self._out.close()

    def stop(self) -> None:
        """Cleanup after a failed test: end the whole group."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self._out.close()


def ray_processes() -> list[str]:
    """What is left of any Ray on this machine: its daemons, HAProxy, and every process a raylet
    started, its workers and actors and what they started in turn (vLLM's engines)."""
    left = []
    for proc in psutil.process_iter(["name", "cmdline", "environ"]):
        cmdline = proc.info["cmdline"] or []
        started_by_ray = "RAY_RAYLET_PID" in (proc.info["environ"] or {})
        if proc.info["name"] in ("raylet", "gcs_server", "haproxy") or started_by_ray:
            left.append(f"{proc.pid} {' '.join(cmdline)[:160]}")
    return left


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no listener
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def wait_for_nothing_left(timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while (left := ray_processes()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, "left running:\n" + "\n".join(left)
