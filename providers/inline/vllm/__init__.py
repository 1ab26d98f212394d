"""inline::vllm: vLLM's async engine and its OpenAI serving layer in the replica."""

from providers.inline.vllm.config import VLLMProviderConfig


def create_provider(config: VLLMProviderConfig):
    from providers.inline.vllm.engine import VLLMProvider

    return VLLMProvider(config)
