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


async def put(files, file_id: str, data: bytes, part_bytes: int = 7) -> None:
    for offset in range(0, len(data), part_bytes):
        await files.write(file_id, data[offset:offset + part_bytes], offset)
    await files.commit(file_id, len(data))


async def test_put_get_delete(files):
    file_id = new_id()
    await put(files, file_id, b"\x00binary\xffcontent")
    assert await files.get(file_id) == b"\x00binary\xffcontent"
    await files.delete(file_id)
    with pytest.raises(NotFoundError):
        await files.get(file_id)
    await files.delete(file_id)  # deleting twice is harmless


async def test_nothing_but_whole_files_under_real_ids(files):
    file_id = new_id()
    await files.write(file_id, b"x" * 60_000, 0)
    with pytest.raises(NotFoundError):
        await files.get(file_id)  # parts are not the file until it is committed
    await files.write(file_id, b"x" * 40_000, 60_000)
    await files.write(file_id, b"x" * 40_000, 60_000)  # a part sent again lands in the same place
    await files.commit(file_id, 100_000)
    assert sorted(p.name for p in files.root.iterdir()) == [file_id]
    assert len(await files.get(file_id)) == 100_000
    empty = new_id()
    await files.commit(empty, 0)
    assert await files.get(empty) == b""


@pytest.mark.parametrize("bad_id", ["../etc/passwd", "file-../../x", "file-XYZ", ""])
async def test_ids_that_are_not_file_ids_are_refused(files, bad_id):
    with pytest.raises(InvalidRequestError):
        await files.get(bad_id)
    with pytest.raises(InvalidRequestError):
        await files.write(bad_id, b"x", 0)
