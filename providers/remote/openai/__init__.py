"""remote::openai: one adapter for any OpenAI-compatible endpoint."""

from providers.remote.openai.config import OpenAICompatConfig


def create_provider(config: OpenAICompatConfig):
    from providers.remote.openai.adapter import OpenAICompatProvider

    return OpenAICompatProvider(config)
