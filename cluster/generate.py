"""Cluster files generated from a run config, so a deployment never drifts from the graph it runs:
the Serve config for `serve deploy`, a KubeRay RayService manifest, and the environment file the
cluster launcher uploads to every node.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from graphs.builder import resolve_config_path
from graphs.serve_env import FAST_SERVE_ENV
from providers.run_config import _ENV_PATTERN, RunConfig, load_run_config

RAY_VERSION = "2.60.0"
SECRET_NAME = "raystack-secrets"
SHARED_VOLUME_CLAIM = "raystack-shared"
SHARED_DIR = "/mnt/raystack"
# Ports of a Ray node: the dashboard, Ray's metrics (Prometheus), Serve's HTTP proxy.
DASHBOARD_PORT, METRICS_PORT = 8265, 8080
_SECRET = re.compile(r"PASSWORD|TOKEN|API_KEY|SECRET")


class _AnyVariable(dict):
    """The generating machine's environment, in which a variable only the cluster sets (a secret)
    counts as set and empty, so the config still validates here."""

    def __contains__(self, name: object) -> bool:
        return True


def load_for_cluster(config_ref: str) -> RunConfig:
    return load_run_config(resolve_config_path(config_ref), environ=_AnyVariable(os.environ))


def env_variables(config_ref: str) -> dict[str, str | None]:
    """Every `${env.VAR}` the run config reads, with its default (None: it has none)."""
    text = resolve_config_path(config_ref).read_text()
    found: dict[str, str | None] = {}
    for match in _ENV_PATTERN.finditer(text):
        name, operator, operand = match.groups()
        default = operand if operator == ":=" else None
        if found.get(name) is None:
            found[name] = default
    return found


def is_secret(name: str) -> bool:
    return bool(_SECRET.search(name))


# The token a serve config asks for when its run config has authentication off: a cluster's port is
# reached by more than one user, and authentication off means one user on loopback.
CLUSTER_TOKEN_VARIABLE = "RAYSTACK_ADMIN_TOKEN"
CLUSTER_AUTH = {"auth": {"provider_config": {"type": "static_tokens", "tokens": {
    f"${{env.{CLUSTER_TOKEN_VARIABLE}}}": {"principal": "admin", "attributes": {"roles": ["admin"]}}}}}}


def serve_config(config_ref: str) -> dict[str, Any]:
    """The Serve deploy config that builds the graph of run config `config_ref` (a path or the
    name of a shipped config), as the cluster will resolve it; with authentication on (one admin
    token from the nodes' environment) when the run config has it off."""
    run_config = load_for_cluster(config_ref)
    args: dict[str, Any] = {"config": config_ref}
    if run_config.server.auth is None:
        args["server"] = CLUSTER_AUTH
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": run_config.server.host, "port": run_config.server.port},
        "applications": [{
            "name": "raystack",
            "route_prefix": "/",
            "import_path": "graphs.builder:build",
            "args": args,
        }],
    }


def env_file(config_ref: str) -> str:
    """The variables a node exports before `ray start`: Serve's fast settings, then the run config's
    (defaults filled in, secrets left to fill)."""
    lines = [f"# Exported on every node before `ray start` (generated from the run config '{config_ref}').",
             "# Ray's token auth, the same token on every node: `ray get-auth-token --generate` prints one.",
             "RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN=",
             *(f"{name}={value}" for name, value in FAST_SERVE_ENV.items())]
    for name, default in env_variables(config_ref).items():
        lines.append(f"{name}={'' if default is None or is_secret(name) else default}")
    return "\n".join(lines) + "\n"


def _container_env(config_ref: str) -> list[dict[str, Any]]:
    env = [{"name": name, "value": value} for name, value in FAST_SERVE_ENV.items()]
    for name, default in env_variables(config_ref).items():
        if is_secret(name):
            env.append({"name": name, "valueFrom": {"secretKeyRef": {
                "name": SECRET_NAME, "key": name, "optional": default is not None}}})
        elif default is not None:
            env.append({"name": name, "value": default})
    return env


def _pod(container: str, image: str, env: list[dict[str, Any]], resources: dict[str, Any],
         ports: list[dict[str, Any]], gpu: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{
            "name": container, "image": image, "env": env, "resources": {"limits": resources, "requests": resources},
            "ports": ports, "volumeMounts": [{"name": "shared", "mountPath": SHARED_DIR}],
        }],
        "volumes": [{"name": "shared", "persistentVolumeClaim": {"claimName": SHARED_VOLUME_CLAIM}}],
    }
    if gpu:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {"spec": spec}


def rayservice(config_ref: str, image: str, gpus_per_worker: int, max_gpu_workers: int) -> dict[str, Any]:
    """A KubeRay RayService: a head that schedules nothing (num-cpus 0), a CPU group for the ingress
    and CPU providers, and a GPU group sized for the engine's shards; tokens and passwords come from
    the Secret `raystack-secrets`, files and checkpoints from a shared volume."""
    run_config = load_for_cluster(config_ref)
    env = _container_env(config_ref)
    metrics = {"containerPort": METRICS_PORT, "name": "metrics"}
    serve = {"containerPort": run_config.server.port, "name": "serve"}
    head_ports = [{"containerPort": 6379, "name": "gcs-server"}, {"containerPort": DASHBOARD_PORT, "name": "dashboard"},
                  {"containerPort": 10001, "name": "client"}, serve, metrics]
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "raystack"},
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config(config_ref), sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                # The operator makes a token Secret and gives every container RAY_AUTH_MODE and RAY_AUTH_TOKEN.
                "authOptions": {"mode": "token"},
                "enableInTreeAutoscaling": True,
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0",
                                       "metrics-export-port": str(METRICS_PORT)},
                    "template": _pod("ray-head", image, env, {"cpu": "4", "memory": "16Gi"}, head_ports),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "cpu", "replicas": 1, "minReplicas": 1, "maxReplicas": 8,
                        "rayStartParams": {"metrics-export-port": str(METRICS_PORT)},
                        "template": _pod("ray-worker", image, env, {"cpu": "8", "memory": "32Gi"}, [serve, metrics]),
                    },
                    {
                        "groupName": "gpu", "replicas": 1, "minReplicas": 1, "maxReplicas": max_gpu_workers,
                        "rayStartParams": {"metrics-export-port": str(METRICS_PORT)},
                        "template": _pod("ray-worker", image, env,
                                         {"cpu": str(8 * gpus_per_worker), "memory": f"{48 * gpus_per_worker}Gi",
                                          "nvidia.com/gpu": str(gpus_per_worker)},
                                         [serve, metrics], gpu=True),
                    },
                ],
            },
        },
    }


def pod_monitor() -> dict[str, Any]:
    """A Prometheus Operator PodMonitor that scrapes every Ray pod's metrics port."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "raystack-ray-nodes", "labels": {"release": "prometheus"}},
        "spec": {
            "selector": {"matchLabels": {"ray.io/is-ray-node": "yes"}},
            "podMetricsEndpoints": [{"port": "metrics", "interval": "15s"}],
        },
    }


def gpus_per_engine(config_ref: str) -> int:
    """GPUs one replica of the run config's largest vLLM engine takes (its shards)."""
    from providers.inline.vllm.config import VLLMProviderConfig

    engines = [VLLMProviderConfig.model_validate(entry.config) for _, entry in load_for_cluster(config_ref).provider_entries()
               if entry.provider_type == "inline::vllm"]
    return max([engine.shards() for engine in engines if engine.use_gpu], default=1)


# Grafana panels on the graph's metrics (deployments/metrics.py); Ray exports a metric `m` as
# `ray_m` (gauges), `ray_m_total` (counters) and `ray_m_bucket` (histograms).
_PANELS: tuple[tuple[str, str, str], ...] = (
    ("HTTP requests / s by route", 'sum by (route) (rate(ray_raystack_http_requests_total[1m]))', "reqps"),
    ("HTTP errors / s by status", 'sum by (status) (rate(ray_raystack_http_requests_total{status=~"4..|5.."}[1m]))', "reqps"),
    ("HTTP latency p50 / p99 (ms)",
     'histogram_quantile(0.5, sum by (le) (rate(ray_raystack_http_request_latency_ms_bucket[5m])))\n'
     'histogram_quantile(0.99, sum by (le) (rate(ray_raystack_http_request_latency_ms_bucket[5m])))', "ms"),
    ("Provider calls / s", 'sum by (provider, method) (rate(ray_raystack_provider_requests_total[1m]))', "reqps"),
    ("Provider errors / s by status", 'sum by (provider, status) (rate(ray_raystack_provider_errors_total[1m]))', "reqps"),
    ("Provider latency p99 (ms)",
     'histogram_quantile(0.99, sum by (le, provider, method) (rate(ray_raystack_provider_latency_ms_bucket[5m])))', "ms"),
    ("Time to first token p50 / p99 (ms)",
     'histogram_quantile(0.5, sum by (le, model) (rate(ray_raystack_time_to_first_token_ms_bucket[5m])))\n'
     'histogram_quantile(0.99, sum by (le, model) (rate(ray_raystack_time_to_first_token_ms_bucket[5m])))', "ms"),
    ("Tokens / s by model (in, out)", 'sum by (model, direction) (rate(ray_raystack_tokens_total[1m]))', "short"),
    ("Store write queue depth", 'max by (store) (ray_raystack_store_queue_depth)', "short"),
    ("Records never insertable (dead letters)", 'sum by (store) (ray_raystack_store_dead_letters)', "short"),
    ("Ingestion: files / s by outcome, chunks / s",
     'sum by (status) (rate(ray_raystack_ingestion_files_total[5m]))\n'
     'sum(rate(ray_raystack_ingestion_chunks_total[1m]))', "short"),
    ("Evaluation rows generated / s", 'sum by (benchmark_id) (rate(ray_raystack_eval_rows_generated_total[1m]))', "short"),
    ("Batches: requests answered / s, batches ended by status",
     'sum(rate(ray_raystack_batch_requests_total[1m]))\n'
     'sum by (status) (increase(ray_raystack_batches_total[5m]))', "short"),
    ("Training loss by job", 'max by (job_uuid) (ray_raystack_training_loss)', "short"),
    ("Training steps by job", 'max by (job_uuid) (ray_raystack_training_step)', "short"),
    ("Training tokens / s by job", 'max by (job_uuid) (ray_raystack_training_tokens_per_second)', "short"),
)


def grafana_dashboard() -> dict[str, Any]:
    """A Grafana dashboard of the panels above, two per row, on a Prometheus datasource variable."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    panels = []
    for i, (title, exprs, unit) in enumerate(_PANELS):
        panels.append({
            "id": i + 1, "type": "timeseries", "title": title, "datasource": datasource,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(ord("A") + j), "datasource": datasource, "expr": expr}
                        for j, expr in enumerate(exprs.split("\n"))],
        })
    return {
        "title": "raystack", "uid": "raystack", "schemaVersion": 39, "version": 1, "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"}, "tags": ["raystack", "ray-serve"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": panels,
    }


class _Dumper(yaml.SafeDumper):
    """Plain YAML for kubectl and humans: no anchors, multi-line strings as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False)


def _yaml(header: str, document: dict[str, Any]) -> str:
    return header + dump(document)


def generated_files(image: str = "raystack:latest") -> dict[str, str]:
    """The files under cluster/ this module writes, by name."""
    header = "# Generated by `python -m cluster write`; edit the run config (graphs/configs/{}.yaml) instead.\n"
    return {
        "serve-starter.yaml": _yaml(header.format("starter"), serve_config("starter")),
        "serve-gpu.yaml": _yaml(header.format("gpu"), serve_config("gpu")),
        "rayservice-gpu.yaml": _yaml(header.format("gpu"), rayservice("gpu", image, gpus_per_engine("gpu"), 4)),
        "gpu.env": header.format("gpu") + env_file("gpu"),
        "podmonitor.yaml": _yaml("# Generated by `python -m cluster write`.\n", pod_monitor()),
        "grafana-dashboard.json": json.dumps(grafana_dashboard(), indent=2) + "\n",
    }


CLUSTER_DIR = Path(__file__).parent
