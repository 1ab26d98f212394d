"""The vLLM provider's gate: batches' requests make way for interactive ones, and only while those run."""

import asyncio
import time

from providers.inline.vllm.background import BackgroundGate


async def run_background(gate: BackgroundGate, running: list[int], peak: list[int], seconds: float) -> None:
    async with gate.background_request():
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(seconds)
        running[0] -= 1


async def test_background_requests_run_together_when_nothing_interactive_runs():
    gate, running, peak = BackgroundGate(while_interactive=2, quiet_s=0.2), [0], [0]
    await asyncio.gather(*(run_background(gate, running, peak, 0.05) for _ in range(8)))
    assert peak[0] == 8


async def test_while_an_interactive_request_runs_two_background_requests_do_and_the_rest_wait_till_it_is_quiet():
    gate, running, peak = BackgroundGate(while_interactive=2, quiet_s=0.2), [0], [0]
    ran_at = []

    async def background():
        await run_background(gate, running, peak, 0.2)
        ran_at.append(time.monotonic())

    async with gate.interactive_request():
        waiting = [asyncio.create_task(background()) for _ in range(12)]
        await asyncio.sleep(0.3)
        assert peak[0] == 2 and len(ran_at) <= 4
    quiet = time.monotonic()
    await asyncio.gather(*waiting)
    assert len(ran_at) == 12
    assert peak[0] > 2 and all(at >= quiet + 0.2 for at in ran_at[-2:])  # the last ones ran together, once quiet


async def test_a_streams_chunks_hold_the_gate_for_quiet_s_each():
    gate, running, peak = BackgroundGate(while_interactive=1, quiet_s=0.2), [0], [0]
    gate.touch()
    await asyncio.gather(*(run_background(gate, running, peak, 0.02) for _ in range(4)))
    assert peak[0] == 1
    await asyncio.sleep(0.25)
    await asyncio.gather(*(run_background(gate, running, peak, 0.02) for _ in range(4)))
    assert peak[0] == 4
