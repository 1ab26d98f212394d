"""The folders where a graph keeps its state (stores, files, datasets, checkpoints, vectors), read off
its run config, so that no folder callers may import datasets from reaches into one: they hold
every user's records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Provider config keys that name a folder of state, or a database file (its folder counts).
FOLDER_KEYS = ("storage_dir", "artifacts_dir", "adapters_dir")
FILE_KEYS = ("db_path",)


def _path(value: str) -> Path:
    return Path(value).expanduser().resolve()


def state_folders(storage: Any, provider_configs: list[dict[str, Any]]) -> list[Path]:
    """The folders of the storage backends' database files, of the stores' outboxes and of the
    providers' state."""
    folders = [_path(b.db_path).parent for b in storage.backends.values() if getattr(b, "db_path", None)]
    folders += [_path(ref.outbox_dir) for ref in storage.stores.values() if getattr(ref, "outbox_dir", None)]
    for config in provider_configs:
        for key in FOLDER_KEYS + FILE_KEYS:
            value = config.get(key)
            if isinstance(value, str) and value:
                folders.append(_path(value).parent if key in FILE_KEYS else _path(value))
    return folders


def import_path_overlap(allowed_paths: list[str], folders: list[Path]) -> tuple[int, str] | None:
    """(index, why) of the first allowed path that contains, or lies inside, a state folder."""
    for i, allowed in enumerate(allowed_paths):
        path = _path(str(allowed))
        for folder in folders:
            if path.is_relative_to(folder) or folder.is_relative_to(path):
                return i, (f"'{allowed}' overlaps the state folder {folder}, where every user's records are kept; "
                           "name a folder of import sources only")
    return None
