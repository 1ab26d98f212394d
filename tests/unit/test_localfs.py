"""inline::localfs keeps file bytes under its directory, whole or not at all."""

import uuid

import pytest

from providers.api.errors import InvalidRequestError, NotFoundError
from providers.inline.localfs import LocalFSConfig, create_provider


@pytest.fixture
def files(tmp_path):
    return create_provider(LocalFSConfig(storage_dir=str(tmp_path / "files")))


def new_id() -> str:
    return f"file-{uuid.uuid4().hex}"


async def test_put_get_delete(files):
    file_id = new_id()
    await files.put(file_id, b"\x00binary\xffcontent")
    assert await files.get(file_id) == b"\x00binary\xffcontent"
    await files.delete(file_id)
    with pytest.raises(NotFoundError):
        await files.get(file_id)
    await files.delete(file_id)  # deleting twice is harmless


async def test_nothing_but_whole_files_under_real_ids(files):
    file_id = new_id()
    await files.put(file_id, b"x" * 100_000)
    assert sorted(p.name for p in files.root.iterdir()) == [file_id]


@pytest.mark.parametrize("bad_id", ["../etc/passwd", "file-../../x", "file-XYZ", ""])
async def test_ids_that_are_not_file_ids_are_refused(files, bad_id):
    with pytest.raises(InvalidRequestError):
        await files.get(bad_id)
    with pytest.raises(InvalidRequestError):
        await files.put(bad_id, b"x")
