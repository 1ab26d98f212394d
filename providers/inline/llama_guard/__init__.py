"""inline::llama-guard: a shield that asks a Llama Guard 3 model of the graph for its verdict."""

from providers.api.inference import ChatModel
from providers.inline.llama_guard.config import LlamaGuardConfig


def create_provider(config: LlamaGuardConfig, models: dict[str, ChatModel]):
    """`models` maps graph model ids to their ChatModel; it holds `config.model`."""
    from providers.inline.llama_guard.shield import LlamaGuardShield

    return LlamaGuardShield(config, models)
