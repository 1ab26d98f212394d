"""The prefix-affinity request router (deployments/prefix_router.py) on real Serve replicas: turns
that share a system prompt reach one replica, a busy replica hands its prefixes on, and they come
back once it drains. The replicas answer with their own id, so the test sees where each call went."""

import asyncio

import pytest
from ray import serve

from deployments.prefix_router import ROUTER_PATH
from providers.api.inference import ChatCompletionRequest, CompletionRequest

APP = "prefix-routing"
SYSTEMS = [f"You are assistant number {i}. " + "Follow the house rules and answer briefly. " * 60 for i in range(16)]


@serve.deployment(num_replicas=2, max_ongoing_requests=32, ray_actor_options={"num_cpus": 0},
                  request_router_config={"request_router_class": ROUTER_PATH,
                                         "request_router_kwargs": {"imbalance_threshold": 3}})
class Replica:
    """Takes an engine deployment's calls (`call(method, request, model)`); answers with its id after `hold_s`."""

    def __init__(self):
        self.replica_id = serve.get_replica_context().replica_id.unique_id

    async def call(self, method: str, request, model: str, hold_s: float = 0.0) -> str:
        await asyncio.sleep(hold_s)
        return self.replica_id


def chat(system: str, user: str) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="m", messages=[{"role": "system", "content": system}, {"role": "user", "content": user}])


@pytest.fixture(scope="module")
def app(serve_session):
    serve.run(Replica.bind(), name=APP, route_prefix=None)
    yield
    serve.delete(APP)


@pytest.mark.timeout(120)
async def test_turns_that_share_a_system_prompt_reach_one_replica(app):
    handle = serve.get_app_handle(APP)
    served: dict[str, set[str]] = {}
    for turn in range(4):
        for i, system in enumerate(SYSTEMS):
            replica = await handle.call.remote("chat_completion", chat(system, f"turn {turn} of {i}"), "m")
            served.setdefault(system, set()).add(replica)
    assert all(len(replicas) == 1 for replicas in served.values())
    assert len(set().union(*served.values())) == 2  # 16 prefixes all on one replica: 1 chance in 32,768
    prompt = SYSTEMS[0] + "Complete this."
    completions = {await handle.call.remote("completion", CompletionRequest(model="m", prompt=prompt), "m") for _ in range(4)}
    assert len(completions) == 1


@pytest.mark.timeout(120)
async def test_a_busy_replica_hands_its_prefixes_on_until_it_drains(app):
    handle = serve.get_app_handle(APP)
    system = SYSTEMS[0]
    home = await handle.call.remote("chat_completion", chat(system, "hello"), "m")
    held = [handle.call.remote("chat_completion", chat(system, f"long question {i}"), "m", hold_s=3) for i in range(4)]
    await asyncio.sleep(0.5)
    elsewhere = await handle.call.remote("chat_completion", chat(system, "quick question"), "m")
    assert set(await asyncio.gather(*held)) == {home}
    assert elsewhere != home
    await asyncio.sleep(0.5)  # the router counts a call done once its reply has been handed over
    assert await handle.call.remote("chat_completion", chat(system, "after the rush"), "m") == home
