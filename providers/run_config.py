"""The run config: which APIs and providers a graph serves, its models, its storage and its server.

Loaded from YAML with `${env.VAR}`, `${env.VAR:=default}` and `${env.VAR:+value}` substitution,
validated with `extra="forbid"` so a typo fails at startup with the key and the file named.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from providers.access.auth_config import AuthProvider
from providers.access.exposure import Exposure
from providers.access.policy import AccessRule
from providers.observability import LoggingOptions, TracingOptions
from providers.service_configs import BatchesConfig, EvalConfig, ResponsesConfig, StrictModel, VectorStoresConfig
from providers.state_folders import import_path_overlap, state_folders


class ConfigError(ValueError):
    """A run config that cannot be used; the message names the file and the key."""


# ---------------------------------------------------------------- storage


class SqliteKVBackend(StrictModel):
    type: Literal["kv_sqlite"]
    db_path: str


class RedisKVBackend(StrictModel):
    type: Literal["kv_redis"]
    url: str = "redis://127.0.0.1:6379/0"


class SqliteSQLBackend(StrictModel):
    type: Literal["sql_sqlite"]
    db_path: str


class PostgresConnection(StrictModel):
    """A PostgreSQL database and the connection pool each process keeps to it."""

    host: str = "127.0.0.1"
    port: int = 5432
    db: str = "raystack"
    user: str = "postgres"
    password: str | None = None
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=20, ge=0)
    pool_timeout_s: float = Field(default=30.0, gt=0)


class PostgresKVBackend(PostgresConnection):
    type: Literal["kv_postgres"]


class PostgresSQLBackend(PostgresConnection):
    type: Literal["sql_postgres"]


StorageBackend = Annotated[
    Union[SqliteKVBackend, RedisKVBackend, PostgresKVBackend, SqliteSQLBackend, PostgresSQLBackend],
    Field(discriminator="type"),
]


class KVStoreRef(StrictModel):
    backend: str
    namespace: str


class SQLStoreRef(StrictModel):
    """A table on a sql backend. Stores that record traffic (inference) write through a
    write-behind queue: `max_write_queue_size` records wait at most, then requests wait for room;
    `num_writers` tasks per process drain it. With `outbox_dir` (a folder on the node's local disk)
    each queued record is also kept there until written, so a process crash loses none; without
    it, a crash loses what the queue held."""

    backend: str
    table_name: str
    max_write_queue_size: int = Field(default=10_000, ge=1)
    num_writers: int = Field(default=4, ge=1)
    outbox_dir: str | None = None


# Which family each store needs: "kv" stores take a namespace, "sql" stores a table.
STORE_FAMILIES: dict[str, str] = {
    "metadata": "kv", "jobs": "sql",
    "prompts": "sql", "inference": "sql", "conversations": "sql", "responses": "sql", "files": "sql", "vector_stores": "sql",
}


class StorageConfig(StrictModel):
    backends: dict[str, StorageBackend] = {}
    stores: dict[str, Union[KVStoreRef, SQLStoreRef]] = {}

    @model_validator(mode="after")
    def _stores_name_backends_of_their_family(self) -> "StorageConfig":
        for store_name, ref in self.stores.items():
            if ref.backend not in self.backends:
                known = ", ".join(sorted(self.backends)) or "none"
                raise ValueError(
                    f"storage.stores.{store_name} names backend '{ref.backend}', "
                    f"which is not declared under storage.backends (declared: {known})"
                )
            family = backend_family(self.backends[ref.backend])
            wanted = STORE_FAMILIES.get(store_name, "kv" if isinstance(ref, KVStoreRef) else "sql")
            if family != wanted:
                raise ValueError(
                    f"storage.stores.{store_name} needs a {wanted} backend, but backend "
                    f"'{ref.backend}' is of type {self.backends[ref.backend].type}"
                )
        return self


def backend_family(backend: BaseModel) -> str:
    return backend.type.split("_", 1)[0]


# ---------------------------------------------------------------- providers


class DeploymentOptions(StrictModel):
    """Ray Serve options of one provider's deployment; unset fields take the registry's defaults."""

    num_replicas: int | None = None
    autoscaling_config: dict[str, Any] | None = None
    ray_actor_options: dict[str, Any] | None = None
    max_ongoing_requests: int | None = None
    max_queued_requests: int | None = None
    max_replicas_per_node: int | None = None
    health_check_period_s: float | None = None
    health_check_timeout_s: float | None = None
    graceful_shutdown_timeout_s: float | None = None
    placement_group_bundles: list[dict[str, float]] | None = None
    placement_group_strategy: str | None = None
    request_router_config: dict[str, Any] | None = None
    # Also run the provider inside each ingress replica, which then calls it with no hop; the agents
    # deployment and Ray Data tasks still call its own deployment. Thin remote clients only.
    colocate: Literal["ingress"] | None = None

    def overrides(self) -> dict[str, Any]:
        """The Ray Serve options among these."""
        return self.model_dump(exclude_none=True, exclude={"colocate"})


class ProviderEntry(StrictModel):
    """`model_registration`: who may register this provider's models at run time; by default the
    administrators on a remote (it spends the operator's key), any signed-in user on an engine of the graph."""

    provider_id: str
    provider_type: str
    config: dict[str, Any] = {}
    deployment: DeploymentOptions = DeploymentOptions()
    model_registration: Literal["admins", "users"] | None = None

    def registered_by_users(self) -> bool:
        return (self.model_registration or ("admins" if self.provider_type.startswith("remote::") else "users")) == "users"


class ModelEntry(StrictModel):
    model_id: str
    provider_id: str
    provider_model_id: str | None = None
    model_type: Literal["llm", "embedding", "rerank"] = "llm"
    metadata: dict[str, Any] = {}


class ShieldEntry(StrictModel):
    shield_id: str = Field(min_length=1)
    provider_id: str
    provider_shield_id: str | None = None
    params: dict[str, Any] = {}


class MCPEndpoint(StrictModel):
    uri: str = Field(pattern=r"^https?://")


class ToolGroupEntry(StrictModel):
    """Tools a tool_runtime provider serves under one id: a web search service, or an MCP server
    at `mcp_endpoint`."""

    toolgroup_id: str = Field(min_length=1)
    provider_id: str
    mcp_endpoint: MCPEndpoint | None = None
    args: dict[str, Any] | None = None


class RegisteredResources(StrictModel):
    models: list[ModelEntry] = []
    shields: list[ShieldEntry] = []
    tool_groups: list[ToolGroupEntry] = []


class ServerConfig(Exposure):
    """Where Serve's proxy listens when deployed from a generated serve config (cluster/generate.py;
    `serve run <module>:<app>` keeps Serve's own 127.0.0.1:8000): loopback unless the config names
    another address; who may call it (`auth`, off when absent: one user on loopback) and what each
    caller may touch (`access_policy`, the default policy of providers/access/policy.py when empty);
    the Host names and body sizes it accepts (providers/access/exposure.py); its logs and traces
    (providers/observability.py)."""

    port: int = Field(default=8000, ge=1, le=65535)
    ingress: DeploymentOptions = DeploymentOptions()
    logging: LoggingOptions = LoggingOptions()
    tracing: TracingOptions | None = None
    access_policy: list[AccessRule] = []


class RunConfig(StrictModel):
    version: int = 1
    apis: list[Literal["inference", "models", "files", "vector_io", "prompts", "conversations", "responses", "safety",
                       "tool_runtime", "agents", "datasetio", "post_training", "eval", "scoring", "inspect",
                       "providers", "batches"]]
    providers: dict[str, list[ProviderEntry]]
    registered_resources: RegisteredResources = RegisteredResources()
    storage: StorageConfig
    server: ServerConfig = ServerConfig()
    vector_stores: VectorStoresConfig = VectorStoresConfig()
    responses: ResponsesConfig = ResponsesConfig()
    eval: EvalConfig = EvalConfig()
    batches: BatchesConfig = BatchesConfig()

    @model_validator(mode="after")
    def _references_resolve(self) -> "RunConfig":
        ids = [p.provider_id for entries in self.providers.values() for p in entries]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"providers: provider_id {duplicates[0]!r} is used more than once")
        for api in self.providers:
            if api not in self.apis:
                raise ValueError(f"providers.{api}: api '{api}' is not listed under apis")
        for i, model in enumerate(self.registered_resources.models):
            if model.provider_id not in ids:
                raise ValueError(
                    f"registered_resources.models.{i}.provider_id: no provider "
                    f"'{model.provider_id}' (known: {', '.join(ids) or 'none'})"
                )
        safety_ids = [p.provider_id for p in self.providers.get("safety", [])]
        for i, shield in enumerate(self.registered_resources.shields):
            if shield.provider_id not in safety_ids:
                raise ValueError(f"registered_resources.shields.{i}.provider_id: no safety provider "
                                 f"'{shield.provider_id}' (known: {', '.join(safety_ids) or 'none'})")
        tool_runtime_ids = [p.provider_id for p in self.providers.get("tool_runtime", [])]
        for i, group in enumerate(self.registered_resources.tool_groups):
            if group.provider_id not in tool_runtime_ids:
                raise ValueError(f"registered_resources.tool_groups.{i}.provider_id: no tool_runtime provider "
                                 f"'{group.provider_id}' (known: {', '.join(tool_runtime_ids) or 'none'})")
        group_ids = [group.toolgroup_id for group in self.registered_resources.tool_groups]
        if len(set(group_ids)) != len(group_ids):
            raise ValueError("registered_resources.tool_groups: toolgroup_id values must be unique")
        shield_ids = [shield.shield_id for shield in self.registered_resources.shields]
        for i, shield_id in enumerate(self.responses.guardrails):
            if shield_id not in shield_ids:
                raise ValueError(f"responses.guardrails.{i}: no shield '{shield_id}' under registered_resources.shields")
        if "metadata" not in self.storage.stores:
            raise ValueError("storage.stores.metadata: a metadata store is required")
        if len(self.providers.get("files", [])) > 1:
            raise ValueError("providers.files: one files provider at most")
        if self.providers.get("files") and "files" not in self.storage.stores:
            raise ValueError("storage.stores.files: a files provider keeps its file records in a 'files' store; declare one")
        if "responses" in self.apis and len(self.providers.get("agents", [])) != 1:
            raise ValueError("providers.agents: the responses api runs its turns in one agents provider "
                             "(provider_type inline::builtin); declare exactly one")
        if len(self.providers.get("prompts", [])) > 1:
            raise ValueError("providers.prompts: one prompts provider at most")
        for api in ("prompts", "conversations", "responses"):
            if api == "prompts" and self.providers.get("prompts"):
                continue  # kept by the provider's registry
            if api in self.apis and api not in self.storage.stores:
                raise ValueError(f"storage.stores.{api}: the {api} api keeps its records in a '{api}' store; declare one")
        for api in ("datasetio", "post_training"):
            if len(self.providers.get(api, [])) > 1:
                raise ValueError(f"providers.{api}: one {api} provider at most")
        for api, needs in (("post_training", "post-training jobs"), ("eval", "evaluation jobs")):
            wanted = self.providers.get(api) if api == "post_training" else api in self.apis
            if wanted and not self.providers.get("datasetio"):
                raise ValueError(f"providers.datasetio: {needs} read datasets; add a provider under providers.datasetio")
            if wanted and "jobs" not in self.storage.stores:
                raise ValueError(f"storage.stores.jobs: {needs} are recorded in a 'jobs' store; declare one")
        if "batches" in self.apis and not (self.providers.get("files") and "jobs" in self.storage.stores):
            raise ValueError("apis: batches read their requests from uploaded files and are recorded in a 'jobs' "
                             "store; declare a provider under providers.files and storage.stores.jobs")
        if len(self.providers.get("vector_io", [])) > 1:
            raise ValueError("providers.vector_io: one vector_io provider at most")
        if self.providers.get("vector_io"):
            if not self.providers.get("files"):
                raise ValueError("providers.vector_io: vector stores ingest uploaded files; add a provider under providers.files")
            if "vector_stores" not in self.storage.stores:
                raise ValueError("storage.stores.vector_stores: a vector_io provider keeps its stores' records in a "
                                 "'vector_stores' store; declare one")
        return self

    def provider_entries(self) -> list[tuple[str, ProviderEntry]]:
        return [(api, entry) for api, entries in self.providers.items() for entry in entries]


# ---------------------------------------------------------------- loading

_ENV_PATTERN = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)(?:(:=|:\+)([^}]*))?\}")


def substitute_env(text: str, environ: dict[str, str] | None = None, *, where: str = "") -> str:
    """Expand `${env.VAR}`, `${env.VAR:=default}` (default when unset or empty) and
    `${env.VAR:+value}` (value when set and non-empty, else empty)."""
    env = os.environ if environ is None else environ

    def expand(match: re.Match[str]) -> str:
        name, operator, operand = match.group(1), match.group(2), match.group(3)
        value = env.get(name, "")
        if operator == ":=":
            return value or operand
        if operator == ":+":
            return operand if value else ""
        if name not in env:
            raise ConfigError(f"{where}: environment variable {name} is not set (used as ${{env.{name}}})")
        return value

    return _ENV_PATTERN.sub(expand, text)


def _walk_substitute(node: Any, environ: dict[str, str] | None, where: str) -> Any:
    if isinstance(node, dict):
        return {
            substitute_env(k, environ, where=f"{where}.{k}".lstrip(".")) if isinstance(k, str) else k:
            _walk_substitute(v, environ, f"{where}.{k}")
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_walk_substitute(v, environ, f"{where}.{i}") for i, v in enumerate(node)]
    if isinstance(node, str):
        expanded = substitute_env(node, environ, where=where.lstrip("."))
        if expanded != node and _ENV_PATTERN.fullmatch(node):
            return _scalar(expanded)
        return expanded
    return node


def _scalar(text: str) -> Any:
    """A whole-value placeholder takes the YAML scalar type of its expansion (port: ${env.PORT})."""
    if text == "":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


def parse_run_config(data: dict[str, Any], source: str, environ: dict[str, str] | None = None) -> RunConfig:
    """Validate a run config mapping; errors name the source and the key."""
    try:
        expanded = _drop_disabled_providers(_walk_substitute(data, environ, ""))
        config = RunConfig.model_validate(expanded)
        _check_provider_configs(config)
        return config
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
            problems.append(f"{key}: {err['msg']}" if key else err["msg"])
        raise ConfigError(f"{source}: invalid run config:\n  " + "\n  ".join(problems)) from None


def _drop_disabled_providers(data: dict[str, Any]) -> dict[str, Any]:
    """A provider entry whose provider_id expands to nothing (`${env.KEY:+id}`) is switched off, and
    so is a tool group whose toolgroup_id does."""
    providers = data.get("providers")
    if isinstance(providers, dict):
        data["providers"] = {
            api: [e for e in entries if not (isinstance(e, dict) and "provider_id" in e and not e["provider_id"])]
            if isinstance(entries, list) else entries
            for api, entries in providers.items()
        }
    resources = data.get("registered_resources")
    if isinstance(resources, dict) and isinstance(resources.get("tool_groups"), list):
        resources["tool_groups"] = [g for g in resources["tool_groups"]
                                    if not (isinstance(g, dict) and "toolgroup_id" in g and not g["toolgroup_id"])]
    return data


def _check_provider_configs(config: RunConfig) -> None:
    """Each provider entry names a known type of its API and a config that type accepts."""
    from providers.registry import PROVIDER_SPECS, UnknownProviderType, get_spec

    for api, entries in config.providers.items():
        for i, entry in enumerate(entries):
            where = f"providers.{api}.{i}"
            try:
                spec = get_spec(entry.provider_type)
            except UnknownProviderType as exc:
                raise ConfigError(f"{where}.provider_type: {exc.args[0]}") from None
            if spec.api != api:
                raise ConfigError(f"{where}.provider_type: {entry.provider_type} serves api '{spec.api}', not '{api}'")
            try:
                spec.check_replicas(entry.deployment.num_replicas, entry.deployment.autoscaling_config)
            except ValueError as exc:
                raise ConfigError(f"{where}.deployment: {exc}") from None
            if entry.deployment.colocate and not spec.colocatable:
                raise ConfigError(f"{where}.deployment.colocate: {entry.provider_type} is not a thin remote client; "
                                  "only " + ", ".join(s.provider_type for s in PROVIDER_SPECS if s.colocatable)
                                  + " run in the ingress")
            try:
                provider_config = spec.parse_config(entry.config)
            except ValidationError as exc:
                problems = [f"{where}.config.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
                raise ConfigError("invalid provider config:\n  " + "\n  ".join(problems)) from None
            for model_id in model_dependencies(provider_config):
                _check_model_dependency(config, model_id, f"{where}.config.model")
    folders = state_folders(config.storage, [entry.config for _, entry in config.provider_entries()])
    for n, entry in enumerate(config.providers.get("datasetio", [])):
        overlap = import_path_overlap(entry.config.get("allowed_paths") or [], folders)
        if overlap:
            raise ConfigError(f"providers.datasetio.{n}.config.allowed_paths.{overlap[0]}: {overlap[1]}")


def model_dependencies(provider_config: BaseModel) -> list[str]:
    """The graph's models a provider calls (a shield that prompts a guard model), from its config."""
    models = getattr(provider_config, "models", None)
    return models() if callable(models) else []


def _check_model_dependency(config: RunConfig, model_id: str, where: str) -> None:
    llms = {m.model_id: m for m in config.registered_resources.models if m.model_type == "llm"}
    if model_id not in llms:
        raise ConfigError(f"{where}: '{model_id}' is not an llm under registered_resources.models "
                          f"(known: {', '.join(llms) or 'none'})")
    if llms[model_id].provider_id not in [p.provider_id for p in config.providers.get("inference", [])]:
        raise ConfigError(f"{where}: model '{model_id}' is not served by an inference provider")


# Error locations name the union member they tried (a backend's type, a store reference's class);
# users know only the keys they wrote.
def _type_tags(union: Any) -> set[str]:
    return {get_args(m.model_fields["type"].annotation)[0] for m in get_args(get_args(union)[0])}


_UNION_TAGS = _type_tags(StorageBackend) | _type_tags(AuthProvider) | {
    KVStoreRef.__name__, SQLStoreRef.__name__}


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("function-") or part in _UNION_TAGS)


def load_run_config(path: str | Path, environ: dict[str, str] | None = None,
                    server: dict[str, Any] | None = None) -> RunConfig:
    """The run config at `path`, with `server` keys (a serve config's) over its own."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: run config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a run config must be a mapping at the top level")
    if server:
        data["server"] = {**(data.get("server") or {}), **server}
    return parse_run_config(data, str(path), environ)
