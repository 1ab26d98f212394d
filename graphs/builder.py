"""Run config -> Ray Serve application: one ingress plus one deployment per provider entry.

    serve run graphs.builder:build config=path/to/run.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel
from ray import serve
from ray.serve import Application

from deployments.ingress import INGRESS_DEFAULTS, Ingress
from deployments.provider import ProviderDeployment
from providers.registry import get_spec
from providers.run_config import DeploymentOptions, RunConfig, load_run_config

# Request-path access logs cost a gateway more than half its throughput; errors still log.
_LOGGING = {"enable_access_log": False}


def merge_options(defaults: dict[str, Any], overrides: DeploymentOptions) -> dict[str, Any]:
    """Registry defaults, then the user's options; nested option dicts merge key by key.
    A fixed `num_replicas` replaces autoscaling."""
    options = {k: dict(v) if isinstance(v, dict) else v for k, v in defaults.items()}
    for key, value in overrides.overrides().items():
        if isinstance(value, dict) and isinstance(options.get(key), dict):
            options[key] = {**options[key], **value}
        else:
            options[key] = value
    if "num_replicas" in options:
        options.pop("autoscaling_config", None)
    return options


def build_app(config: RunConfig) -> Application:
    handles = {}
    for _, entry in config.provider_entries():
        options = merge_options(get_spec(entry.provider_type).deployment_defaults, entry.deployment)
        deployment = serve.deployment(ProviderDeployment).options(
            name=f"provider-{entry.provider_id}", logging_config=_LOGGING, **options
        )
        handles[entry.provider_id] = deployment.bind(entry.provider_id, entry.provider_type, entry.config)
    ingress = serve.deployment(serve.ingress()(Ingress)).options(
        name="ingress", logging_config=_LOGGING, **merge_options(INGRESS_DEFAULTS, config.server.ingress)
    )
    return ingress.bind(config.model_dump(mode="json"), handles)


SHIPPED_CONFIGS = Path(__file__).parent / "configs"


class BuildArgs(BaseModel):
    config: str


def resolve_config_path(config: str) -> Path:
    """A run config path, or the name of one shipped in graphs/configs ("starter")."""
    path = Path(config).expanduser()
    shipped = SHIPPED_CONFIGS / f"{config}.yaml"
    return shipped if not path.exists() and shipped.exists() else path


def build(args: BuildArgs) -> Application:
    """`serve run graphs.builder:build config=run.yaml` and the `serve deploy` import path."""
    return build_app(load_run_config(resolve_config_path(args.config)))
