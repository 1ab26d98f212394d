"""inline::torchtune: supervised fine-tuning with torchtune's models and LoRA on Ray Train workers."""

from providers.inline.torchtune.config import TorchtuneConfig


def create_provider(config: TorchtuneConfig):
    from providers.inline.torchtune.provider import TorchtunePostTraining

    return TorchtunePostTraining(config)
