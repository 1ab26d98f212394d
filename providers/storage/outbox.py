"""A process's outbox: the records its write-behind queue holds, appended to a local SQLite file
before the request is answered and deleted once the database has them.

Each process owns one file, locked (`flock`) while it lives. A process that dies with records
queued leaves its file unlocked; the next process of the same store on that node to start or to
sweep claims it, moves its records into its own outbox and queues them. A SIGKILL loses nothing
the outbox holds: WAL mode with `synchronous=NORMAL` leaves each commit in the kernel's page cache
at once (a power cut, not a process crash, can take the last commits).
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
import uuid
from pathlib import Path
from typing import Any

logger = logging.getLogger("ray.serve")

_SIDE_FILES = ("-wal", "-shm")
_MAX_VARIABLES = 500  # bound parameters per statement (SQLite allows 999 before 3.32)


class Outbox:
    def __init__(self, folder: str | Path, name: str):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.path = self.folder / f"{name}.{uuid.uuid4().hex}.db"
        self._lock = _locked(self._lock_path(self.path))
        self._db = _open(self.path)

    def append(self, row: dict[str, Any]) -> int:
        """Keep `row`; returns its sequence number."""
        return self._db.execute("INSERT INTO records (body) VALUES (?)", (json.dumps(row),)).lastrowid

    def remove(self, seqs: list[int]) -> None:
        for start in range(0, len(seqs), _MAX_VARIABLES):
            chunk = seqs[start:start + _MAX_VARIABLES]
            self._db.execute(f"DELETE FROM records WHERE seq IN ({','.join('?' * len(chunk))})", chunk)

    def claim_orphans(self) -> list[tuple[int, dict[str, Any]]]:
        """The records of this store's outboxes whose processes died, moved into this one."""
        claimed: list[tuple[int, dict[str, Any]]] = []
        for path in sorted(self.folder.glob(f"{self.name}.*.db")):
            if path == self.path:
                continue
            try:
                lock = _locked(self._lock_path(path))
            except OSError:
                continue  # alive, or claimed by another process just now
            try:
                if path.exists():
                    claimed += self._adopt(path)
            finally:
                self._lock_path(path).unlink(missing_ok=True)
                lock.close()
        return claimed

    def _adopt(self, path: Path) -> list[tuple[int, dict[str, Any]]]:
        orphan = _open(path)
        try:
            bodies = [body for (body,) in orphan.execute("SELECT body FROM records ORDER BY seq")]
        finally:
            orphan.close()
        with self._db:  # one transaction: the records are here before the orphan's file goes
            self._db.execute("BEGIN")
            seqs = [self._db.execute("INSERT INTO records (body) VALUES (?)", (b,)).lastrowid for b in bodies]
        for suffix in ("", *_SIDE_FILES):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        if bodies:
            logger.warning("outbox %s: %d records of a process that died are queued again", path.name, len(bodies))
        return [(seq, json.loads(body)) for seq, body in zip(seqs, bodies)]

    def pending(self) -> int:
        return self._db.execute("SELECT count(*) FROM records").fetchone()[0]

    def close(self) -> None:
        """Close; an empty outbox's file goes, one still holding records stays for a successor."""
        empty = self.pending() == 0
        self._db.close()
        if empty:
            for suffix in ("", *_SIDE_FILES):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._lock_path(self.path).unlink(missing_ok=True)
        self._lock.close()

    @staticmethod
    def _lock_path(path: Path) -> Path:
        return path.with_suffix(".lock")


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
    return db


def _locked(path: Path):
    """`path` opened and exclusively locked; OSError if another live process holds it."""
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise
    return handle
