"""What a Ray leaves running when it is killed or stopped, and ending it.

Serve's HAProxy and vLLM's engine processes run outside the process group of the Ray worker that
started them: a SIGKILL of `serve run`, or `ray stop --force`, leaves them running, HAProxy holding
the HTTP ports (the next `serve deploy` never gets past `proxies: STARTING`) and each engine its
memory (about 3 GB for the starter's SmolLM2). `serve run` of a graph ends them before it starts
Ray; before `ray start`, run `python -m cluster clean`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)


def _stale_haproxy(proc: psutil.Process, folders: tuple[Path, ...]) -> bool:
    """HAProxy of one of `folders` whose HAProxyManager actor is gone."""
    cmdline = proc.info["cmdline"] or []
    if not cmdline or os.path.basename(cmdline[0]) != "haproxy":
        return False
    if not any(arg.startswith(f"{folder}{os.sep}") for arg in cmdline for folder in folders):
        return False
    try:
        parent = psutil.Process(proc.info["ppid"]).cmdline()
    except psutil.Error:
        return True
    return not (parent and parent[0].startswith("ray::"))


def _orphan_of_ray(proc: psutil.Process) -> bool:
    """A process a raylet started (Ray puts RAY_RAYLET_PID in its workers' environment: vLLM's
    engines inherit it) whose raylet is gone."""
    raylet = (proc.info["environ"] or {}).get("RAY_RAYLET_PID", "")
    if not raylet.isdigit():
        return False
    try:
        return psutil.Process(int(raylet)).name() != "raylet"
    except psutil.Error:
        return True


def stale_processes(haproxy_folders: tuple[Path, ...]) -> list[psutil.Process]:
    return [proc for proc in psutil.process_iter(["ppid", "cmdline", "environ"])
            if proc.pid != os.getpid() and (_stale_haproxy(proc, haproxy_folders) or _orphan_of_ray(proc))]


def end_stale_processes(haproxy_folders: tuple[Path, ...]) -> list[str]:
    """End what `stale_processes` finds (SIGTERM, then SIGKILL after 5 s); returns each one's pid
    and command line."""
    stale = stale_processes(haproxy_folders)
    ended = [f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:120]}" for proc in stale]
    for proc, line in zip(stale, ended):
        logger.warning("ending pid %s: the Ray that started it is gone", line)
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(stale, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    return ended
