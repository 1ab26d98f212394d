"""The inference store's outbox: a process SIGKILLed with records queued behind a database that
does not answer loses none of them; the next process of the store on the node writes them."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from providers.storage.outbox import Outbox
from tests.unit.test_inference_store import ALICE, completion, make_storage, open_store

pytestmark = pytest.mark.timeout(60)

# A process that queues records while every write waits on a database that never answers, prints
# their ids once `put` returned for each (the moment a request is answered), then is SIGKILLed.
CRASHING_WRITER = textwrap.dedent("""
    import asyncio, json, sys
    from providers.run_config import StorageConfig
    from providers.storage import Storage
    from providers.storage.inference_store import InferenceStore
    from tests.unit.test_inference_store import completion

    async def main():
        storage = Storage(StorageConfig.model_validate(json.loads(sys.argv[1])))
        engine, _ = storage.sql("inference")
        store = InferenceStore(engine, storage.config.stores["inference"], None)
        await store.create_table()

        async def database_that_never_answers(rows):
            await asyncio.Event().wait()

        store.queue._write_batch = database_that_never_answers
        store.queue.start()
        for n in range(int(sys.argv[2])):
            await store.queue.put(store.completion_row(completion(n), [{"role": "user", "content": "q"}], None))
        print(json.dumps([f"chatcmpl-{n:03d}" for n in range(int(sys.argv[2]))]), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


def run_and_kill(storage_config: dict, records: int) -> list[str]:
    child = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, json.dumps(storage_config), str(records)],
                             stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        acknowledged = json.loads(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    return acknowledged


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_records_of_a_killed_process_are_written_by_the_next_one(backend, tmp_path):
    storage = make_storage(backend, tmp_path, outbox_dir=str(tmp_path / "outbox"), max_write_queue_size=1000)
    acknowledged = run_and_kill(storage.config.model_dump(), 300)
    assert len(list((tmp_path / "outbox").glob("*.db"))) == 1, "the dead process's outbox is left behind"

    successor = await open_store(storage)
    successor.queue.start()
    await asyncio.wait_for(successor.queue.flush(), timeout=30)
    listed = await successor.list(None, after=None, limit=500, model=None, order="asc")
    assert [r["id"] for r in listed["data"]] == acknowledged
    assert successor.queue.recovered == 300
    await successor.close()
    assert list((tmp_path / "outbox").iterdir()) == [], "every outbox is gone once its records are stored"
    await storage.close()


async def test_a_live_processs_outbox_is_not_claimed_and_a_clean_close_leaves_nothing(tmp_path):
    storage = make_storage("sqlite", tmp_path, outbox_dir=str(tmp_path / "outbox"))
    first, second = await open_store(storage), await open_store(storage)
    first.queue.start()
    second.queue.start()
    for n in range(5):
        await first.queue.put(first.completion_row(completion(n), [], ALICE))
    assert second.queue._outbox.claim_orphans() == []
    await first.close()
    await second.close()
    assert list((tmp_path / "outbox").iterdir()) == []
    assert len((await first.list(ALICE, after=None, limit=10, model=None, order="asc"))["data"]) == 5
    await storage.close()


async def test_records_that_cannot_be_written_at_shutdown_stay_for_the_next_process(tmp_path):
    """A clean shutdown while the database is down leaves the unwritten records in the outbox."""
    storage = make_storage("sqlite", tmp_path, outbox_dir=str(tmp_path / "outbox"))
    store = await open_store(storage)

    async def database_down(rows):
        raise ConnectionError("database restarting")

    store.queue._write_batch = database_down
    for n in range(3):
        await store.queue.put(store.completion_row(completion(n), [], ALICE))
    await store.queue.close(timeout_s=0.2)
    assert store.queue.lost == 0
    successor = await open_store(storage)
    successor.queue.start()
    await asyncio.wait_for(successor.queue.flush(), timeout=30)
    assert len((await successor.list(ALICE, after=None, limit=10, model=None, order="asc"))["data"]) == 3
    await successor.close()
    await storage.close()


def test_an_outbox_keeps_rows_in_order_until_removed(tmp_path):
    outbox = Outbox(tmp_path, "t")
    seqs = [outbox.append({"n": n}) for n in range(4)]
    outbox.remove(seqs[:2])
    assert outbox.pending() == 2
    outbox.close()
    assert len(list(tmp_path.glob("t.*.db"))) == 1, "an outbox holding records outlives its process's close"
    adopter = Outbox(tmp_path, "t")
    assert [row for _, row in adopter.claim_orphans()] == [{"n": 2}, {"n": 3}]
    assert Outbox(tmp_path, "other").claim_orphans() == [], "another store's outboxes are not its own"
