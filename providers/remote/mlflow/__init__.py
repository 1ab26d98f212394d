"""remote::mlflow: prompts kept in MLflow's prompt registry."""

from providers.remote.mlflow.config import MLflowPromptsConfig


def create_provider(config: MLflowPromptsConfig):
    from providers.remote.mlflow.prompts import MLflowPrompts

    return MLflowPrompts(config)
