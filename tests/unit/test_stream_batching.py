"""Stream chunks are grouped by arrival time: the first alone, then per window, none lost."""

import asyncio

from deployments.provider_host import batched


async def chunks_at(delays):
    for i, delay in enumerate(delays):
        await asyncio.sleep(delay)
        yield i


async def collect(delays, window):
    return [batch async for batch in batched(chunks_at(delays).__aiter__(), window)]


async def test_first_chunk_alone_then_grouped_by_window():
    batches = await collect([0, 0, 0, 0, 0.3, 0, 0], window=0.1)
    assert batches[0] == [0]
    assert [c for b in batches for c in b] == list(range(7))
    assert [1, 2, 3] in batches and [4, 5, 6] in batches


async def test_zero_window_still_delivers_everything_in_order():
    batches = await collect([0.01] * 5, window=0)
    assert [c for b in batches for c in b] == list(range(5))


async def test_error_from_the_source_reaches_the_consumer():
    async def failing():
        yield 1
        raise RuntimeError("engine died")

    seen = []
    try:
        async for batch in batched(failing().__aiter__(), 0.01):
            seen.extend(batch)
    except RuntimeError as exc:
        assert str(exc) == "engine died"
    else:
        raise AssertionError("the error was swallowed")
    assert seen == [1]
