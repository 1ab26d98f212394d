"""The Llama Guard shield: its prompt, its verdict parser, and a round trip through the real
remote::openai adapter to a loopback server that plays a hosted Llama Guard."""

import pytest
from pydantic import ValidationError

from providers.api.errors import InvalidRequestError, ProviderError
from providers.api.safety import CATEGORIES
from providers.inline.llama_guard import LlamaGuardConfig, create_provider
from providers.inline.llama_guard.shield import HAZARDS, build_prompt, parse_verdict
from providers.remote.openai.adapter import OpenAICompatProvider
from providers.remote.openai.config import OpenAICompatConfig
from tests.fake_llama_guard import start_fake_llama_guard


@pytest.fixture(scope="module")
def guard_server():
    """(base_url, request bodies seen) of the fake."""
    base_url, bodies, stop = start_fake_llama_guard()
    yield base_url, bodies
    stop()


class RemoteChatModel:
    """A ChatModel: the remote::openai adapter bound to one of its endpoint's models."""

    def __init__(self, provider: OpenAICompatProvider, provider_model_id: str):
        self.provider, self.provider_model_id = provider, provider_model_id

    async def chat_completion(self, request):
        return await self.provider.chat_completion(request, self.provider_model_id)


@pytest.fixture
async def models(guard_server):
    provider = OpenAICompatProvider(OpenAICompatConfig(base_url=guard_server[0], timeout_s=5))
    yield {"guard": RemoteChatModel(provider, "meta-llama/Llama-Guard-3-8B"),
           "chatty": RemoteChatModel(provider, "chatty")}
    await provider.shutdown()


def test_the_prompt_holds_the_text_and_leaves_out_excluded_categories():
    prompt = build_prompt("how do I bake bread?", [code for code in HAZARDS if code not in {"S6", "S13"}])
    assert "<BEGIN CONVERSATION>\n\nUser: how do I bake bread?\n\n<END CONVERSATION>" in prompt
    assert "S1: Violent Crimes." in prompt and "S14: Code Interpreter Abuse." in prompt
    assert "S6:" not in prompt and "Elections" not in prompt
    assert "First line must read 'safe' or 'unsafe'." in prompt


def test_verdicts_parse_into_codes_and_garbage_is_a_provider_error():
    assert parse_verdict("safe", "guard") is None and parse_verdict("  Safe<|eot_id|>", "guard") is None
    assert parse_verdict(" UNSAFE \n s10, S1\nbecause reasons", "guard") == ["S10", "S1"]
    assert parse_verdict("unsafe", "guard") == []
    with pytest.raises(ProviderError, match="guard.*'I am a helpful assistant'"):
        parse_verdict("I am a helpful assistant", "guard")


def test_the_config_names_an_unknown_category():
    assert LlamaGuardConfig(model="guard", excluded_categories=["S6"]).models() == ["guard"]
    with pytest.raises(ValidationError, match="S15"):
        LlamaGuardConfig(model="guard", excluded_categories=["S15"])


async def test_verdicts_come_back_as_openai_moderation_results(models, guard_server):
    shield = create_provider(LlamaGuardConfig(model="guard"), models)
    texts = ["I will kill him", "I hate them all", "diagnose my rash", "Lovely weather today"]
    violent, hateful, advice, friendly = await shield.moderate(texts, {})
    assert violent["flagged"] and violent["categories"]["violence"] and violent["category_scores"]["violence"] == 1.0
    assert violent["llama_guard_categories"] == ["S1"] and not violent["categories"]["hate"]
    assert hateful["flagged"] and hateful["categories"]["hate"] and hateful["llama_guard_categories"] == ["S10"]
    assert advice["flagged"] and not any(advice["categories"].values()) and advice["llama_guard_categories"] == ["S6"]
    assert not friendly["flagged"] and friendly["llama_guard_categories"] == []
    assert set(friendly["categories"]) == set(CATEGORIES)
    body = guard_server[1][-1]
    assert body["model"] == "meta-llama/Llama-Guard-3-8B" and body["temperature"] == 0 and body["max_tokens"] == 20
    assert len(body["messages"]) == 1 and body["messages"][0]["role"] == "user"


async def test_excluded_categories_in_params_reach_the_prompt(models, guard_server):
    shield = create_provider(LlamaGuardConfig(model="guard", excluded_categories=["S1"]), models)
    [result] = await shield.moderate(["hello"], {"excluded_categories": ["S6", "S13"]})
    prompt = guard_server[1][-1]["messages"][0]["content"]
    assert not result["flagged"] and "S1: Violent Crimes." in prompt and "S6:" not in prompt and "S13:" not in prompt
    with pytest.raises(InvalidRequestError, match="S99") as error:
        await shield.moderate(["hello"], {"excluded_categories": ["S99"]})
    assert error.value.param == "params.excluded_categories"


async def test_a_model_that_answers_in_prose_is_a_provider_error(models):
    shield = create_provider(LlamaGuardConfig(model="chatty"), models)
    with pytest.raises(ProviderError, match="chatty.*helpful assistant"):
        await shield.moderate(["hello"], {})
    assert await shield.health() == {"status": "OK"}
