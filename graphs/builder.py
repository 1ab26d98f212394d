"""Run config -> Ray Serve application: one ingress plus one deployment per provider entry.

    serve run graphs.builder:build config=path/to/run.yaml

No `from __future__ import annotations` here: Serve reads `build`'s annotation to turn the
command line's or the serve config's `args` into `BuildArgs`, and a string annotation is passed a dict.
"""

from pathlib import Path
from typing import Any

from pydantic import BaseModel
from ray import serve
from ray.serve import Application

from deployments.agents import AgentsDeployment
from deployments.ingress import INGRESS_DEFAULTS, Ingress
from deployments.provider_host import ModelRoute, ProviderDeployment
from graphs.serve_env import apply_fast_serve_defaults
from providers.registry import get_spec
from providers.run_config import DeploymentOptions, ProviderEntry, RunConfig, load_run_config, model_dependencies


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
    run_config = config.model_dump(mode="json")
    logging_config = config.server.logging.serve_logging_config()
    handles = {}
    # Providers that call graph models (a guard model's shield) bind after the inference providers,
    # and the agents deployment, which calls them all, last.
    for _, entry in sorted(config.provider_entries(), key=_binding_order):
        spec = get_spec(entry.provider_type)
        options = merge_options(spec.deployment_defaults, entry.deployment)
        if entry.deployment.placement_group_bundles is None:
            options.update(_placement(spec.parse_config(entry.config), options.get("ray_actor_options", {})))
        name = f"provider-{entry.provider_id}"
        if spec.composes_graph:
            deployment = serve.deployment(AgentsDeployment).options(name=name, logging_config=logging_config, **options)
            handles[entry.provider_id] = deployment.bind(entry.provider_id, run_config, dict(handles), entry.config)
            continue
        deployment = serve.deployment(ProviderDeployment).options(name=name, logging_config=logging_config, **options)
        models = _model_routes(config, entry, handles)
        handles[entry.provider_id] = deployment.bind(entry.provider_id, entry.provider_type, entry.config, models,
                                                     tracing=run_config["server"]["tracing"])
    ingress = serve.deployment(serve.ingress()(Ingress)).options(
        name="ingress", logging_config=logging_config, **merge_options(INGRESS_DEFAULTS, config.server.ingress)
    )
    return ingress.bind(run_config, handles)


def _placement(provider_config: BaseModel, ray_actor_options: dict[str, Any]) -> dict[str, Any]:
    """Options a provider's config asks for to reach its devices (vLLM's GPUs); none for most."""
    placement = getattr(provider_config, "deployment_placement", None)
    return placement(ray_actor_options) if callable(placement) else {}


def _binding_order(pair: tuple[str, ProviderEntry]) -> int:
    entry = pair[1]
    if get_spec(entry.provider_type).composes_graph:
        return 2
    return 1 if _model_dependencies(entry) else 0


def _model_dependencies(entry: ProviderEntry) -> list[str]:
    return model_dependencies(get_spec(entry.provider_type).parse_config(entry.config))


def _model_routes(config: RunConfig, entry: ProviderEntry, handles: dict[str, Any]) -> dict[str, ModelRoute] | None:
    """The inference deployment and provider model id of each graph model the provider calls."""
    wanted = _model_dependencies(entry)
    if not wanted:
        return None
    models = {m.model_id: m for m in config.registered_resources.models}
    return {model_id: ModelRoute(handle=handles[models[model_id].provider_id],
                                 provider_model_id=models[model_id].provider_model_id or model_id)
            for model_id in wanted}


SHIPPED_CONFIGS = Path(__file__).parent / "configs"


class BuildArgs(BaseModel):
    """`config`: a run config path or a shipped config's name; `server`: keys over the run config's
    `server` (a serve config turns authentication on this way, `${env.*}` substituted on the node)."""

    config: str
    server: dict[str, Any] = {}


def resolve_config_path(config: str) -> Path:
    """A run config path, or the name of one shipped in graphs/configs ("starter")."""
    path = Path(config).expanduser()
    shipped = SHIPPED_CONFIGS / f"{config}.yaml"
    return shipped if not path.exists() and shipped.exists() else path


def build(args: BuildArgs) -> Application:
    """`serve run graphs.builder:build config=run.yaml` and the `serve deploy` import path. `serve run`
    builds the app before it starts Ray, so the fast Serve settings reach the cluster it starts; on
    `serve deploy` the nodes' environment (the cluster files export them) is the one that counts."""
    apply_fast_serve_defaults()
    return build_app(load_run_config(resolve_config_path(args.config), server=args.server))
