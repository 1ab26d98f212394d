"""Every file in cluster/ is what the generator makes of the run configs, and each is valid for the
tool that reads it: Serve, KubeRay, Ray's cluster launcher, Grafana."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.serve.schema import ServeDeploySchema

from cluster.generate import CLUSTER_DIR, SECRET_NAME, env_variables, generated_files, is_secret, serve_config
from deployments.metrics import METRIC_NAMES
from graphs.builder import SHIPPED_CONFIGS, build_app
from providers.inline.vllm.config import VLLMProviderConfig
from providers.run_config import load_run_config

LAUNCHER_FILES = ("aws-gpu.yaml", "gcp-gpu.yaml")
HAND_WRITTEN = {"__init__.py", "__main__.py", "generate.py", "Dockerfile", *LAUNCHER_FILES}
GPU_ENV = {"RAYSTACK_ADMIN_TOKEN": "admin-token"}


def test_every_file_in_cluster_is_generated_or_checked_here():
    present = {p.name for p in CLUSTER_DIR.iterdir() if p.is_file()}
    assert present == HAND_WRITTEN | set(generated_files())


@pytest.mark.parametrize("name", sorted(generated_files()))
def test_generated_files_are_committed_as_generated(name):
    assert (CLUSTER_DIR / name).read_text() == generated_files()[name], "regenerate: python -m cluster write"


def build_through_serve(app_schema, monkeypatch):
    """The application Serve builds from a serve config's import path and args, as `serve deploy`
    and the RayService's controller do: the builder function called through Serve's args path."""
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    for name, value in GPU_ENV.items():
        monkeypatch.setenv(name, value)
    return call_user_app_builder_with_args_if_necessary(import_attr(app_schema.import_path), app_schema.args)


@pytest.mark.parametrize("config", ["starter", "gpu"])
def test_serve_configs_validate_and_build_the_run_config(config, monkeypatch):
    shipped = yaml.safe_load((CLUSTER_DIR / f"serve-{config}.yaml").read_text())
    schema = ServeDeploySchema.model_validate(shipped)
    (app_schema,) = schema.applications
    names = {d.name for d in _deployments(build_through_serve(app_schema, monkeypatch))}
    assert {"ingress", "provider-vllm", "provider-sentence-transformers"} <= names
    run_config = load_run_config(SHIPPED_CONFIGS / f"{config}.yaml", environ=GPU_ENV)
    assert (schema.http_options.host, schema.http_options.port) == (run_config.server.host, run_config.server.port)


def test_the_starter_serve_config_listens_on_loopback_and_the_gpu_one_on_every_address():
    hosts = {config: yaml.safe_load((CLUSTER_DIR / f"serve-{config}.yaml").read_text())["http_options"]["host"]
             for config in ("starter", "gpu")}
    assert hosts == {"starter": "127.0.0.1", "gpu": "0.0.0.0"}


def test_rayservice_serve_config_loads_through_serves_schema_and_builds(monkeypatch):
    schema = ServeDeploySchema.model_validate(yaml.safe_load(rayservice()["spec"]["serveConfigV2"]))
    (app_schema,) = schema.applications
    engine = next(d for d in _deployments(build_through_serve(app_schema, monkeypatch)) if d.name == "provider-vllm")
    assert len(engine._replica_config.placement_group_bundles) == 2


def rayservice():
    return yaml.safe_load((CLUSTER_DIR / "rayservice-gpu.yaml").read_text())


def test_rayservice_runs_the_gpu_serve_config_on_a_head_that_schedules_nothing():
    manifest = rayservice()
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayService"
    assert yaml.safe_load(manifest["spec"]["serveConfigV2"]) == serve_config("gpu")
    cluster = manifest["spec"]["rayClusterConfig"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    head_ports = {p["name"]: p["containerPort"] for p in cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]}
    assert head_ports["dashboard"] == 8265 and head_ports["serve"] == 8000
    assert head_ports["metrics"] == int(cluster["headGroupSpec"]["rayStartParams"]["metrics-export-port"])


def test_rayservice_gpu_workers_fit_one_engine_and_scale():
    engine = VLLMProviderConfig.model_validate(
        load_run_config(SHIPPED_CONFIGS / "gpu.yaml", environ=GPU_ENV).providers["inference"][0].config)
    groups = {g["groupName"]: g for g in rayservice()["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    gpu = groups["gpu"]
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) == engine.shards() == 2
    assert gpu["minReplicas"] <= gpu["replicas"] <= gpu["maxReplicas"] and gpu["maxReplicas"] > 1
    assert "nvidia.com/gpu" not in groups["cpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_rayservice_takes_secrets_from_the_secret_and_every_variable_the_run_config_reads():
    for group in [rayservice()["spec"]["rayClusterConfig"]["headGroupSpec"],
                  *rayservice()["spec"]["rayClusterConfig"]["workerGroupSpecs"]]:
        env = {e["name"]: e for e in group["template"]["spec"]["containers"][0]["env"]}
        for name, default in env_variables("gpu").items():
            if is_secret(name):
                assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
            elif default is not None:
                assert env[name]["value"] == default
        assert env["RAYSTACK_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is False
        assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"


def test_prometheus_scrapes_the_metrics_port_of_every_ray_pod():
    monitor = yaml.safe_load((CLUSTER_DIR / "podmonitor.yaml").read_text())
    assert monitor["kind"] == "PodMonitor"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    cluster = rayservice()["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        ports = {p["name"]: p["containerPort"] for p in group["template"]["spec"]["containers"][0]["ports"]}
        assert ports[endpoint["port"]] == int(group["rayStartParams"]["metrics-export-port"])


def test_env_file_turns_on_token_auth_and_lists_every_variable_of_the_gpu_config():
    lines = dict(line.split("=", 1) for line in (CLUSTER_DIR / "gpu.env").read_text().splitlines()
                 if line and not line.startswith("#"))
    assert lines["RAY_AUTH_MODE"] == "token" and lines["RAY_AUTH_TOKEN"] == ""
    assert env_variables("gpu").keys() <= lines.keys()
    assert all(lines[name] == "" for name in lines if is_secret(name))


def launcher_schema():
    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


@pytest.mark.parametrize("name", LAUNCHER_FILES)
def test_cluster_launcher_configs_validate_and_start_ray_with_the_run_configs_env(name):
    config = yaml.safe_load((CLUSTER_DIR / name).read_text())
    jsonschema.validate(config, launcher_schema())
    head = " ".join(config["head_start_ray_commands"])
    assert "--num-cpus=0" in head and "--port=6379" not in head and "--metrics-export-port=8080" in head
    env_file = config["file_mounts"]["/home/ray/raystack.env"]
    assert env_file == "./cluster/gpu.local.env", "the filled-in copy of cluster/gpu.env, which git ignores"
    assert all(". /home/ray/raystack.env" in c for c in config["head_start_ray_commands"][1:] + config["worker_start_ray_commands"][1:])
    gpu_node = config["available_node_types"]["gpu_worker"]["resources"]
    assert gpu_node["GPU"] % 2 == 0, "a GPU node holds whole tensor-parallel engines (2 shards)"
    assert any(key.startswith("accelerator_type:") for key in gpu_node)


def test_grafana_dashboard_uses_only_the_graphs_metrics_and_shows_each():
    dashboard = json.loads((CLUSTER_DIR / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {m.group(1) for e in exprs for m in re.finditer(r"\bray_(\w+?)(?:_total|_bucket)?\b", e)}
    assert used == set(METRIC_NAMES)


def test_gpu_engine_placement_one_gpu_bundle_per_shard():
    sharded = VLLMProviderConfig(use_gpu=True, accelerator_type="A10G", engine_args={"tensor_parallel_size": 4})
    placement = sharded.deployment_placement({"num_cpus": 2})
    assert placement["placement_group_bundles"] == [
        {"CPU": 2, "GPU": 1, "accelerator_type:A10G": 0.001}] + [{"GPU": 1, "accelerator_type:A10G": 0.001}] * 3
    assert placement["placement_group_strategy"] == "STRICT_PACK"
    assert placement["ray_actor_options"]["num_gpus"] == 0
    pipelined = VLLMProviderConfig(use_gpu=True, engine_args={"tensor_parallel_size": 2, "pipeline_parallel_size": 2})
    assert pipelined.deployment_placement({})["placement_group_strategy"] == "PACK"
    single = VLLMProviderConfig(use_gpu=True, accelerator_type="L4").deployment_placement({"num_cpus": 1})
    assert single == {"ray_actor_options": {"num_cpus": 1, "num_gpus": 1, "accelerator_type": "L4"}}
    assert VLLMProviderConfig().deployment_placement({"num_cpus": 1}) == {}


def test_gpu_graph_deploys_its_engine_with_the_bundles_and_autoscaling_of_its_config():
    app = build_app(load_run_config(SHIPPED_CONFIGS / "gpu.yaml", environ={**GPU_ENV, "RAYSTACK_LLM_MAX_REPLICAS": "6"}))
    deployments = {d.name: d for d in _deployments(app)}
    engine = deployments["provider-vllm"]
    assert engine._replica_config.placement_group_bundles == [{"CPU": 2, "GPU": 1, "accelerator_type:A10G": 0.001},
                                              {"GPU": 1, "accelerator_type:A10G": 0.001}]
    scaling = engine._deployment_config.autoscaling_config
    assert (scaling.min_replicas, scaling.max_replicas, scaling.downscale_delay_s) == (1, 6, 600)
    assert engine._deployment_config.graceful_shutdown_timeout_s == 120
    assert all(d._deployment_config.logging_config["encoding"] == "JSON" for d in deployments.values())
    ingress = deployments["ingress"]
    assert ingress._deployment_config.autoscaling_config.max_replicas == 16
    assert deployments["provider-sentence-transformers"].ray_actor_options["num_cpus"] == 1


def _deployments(app):
    """The deployments of a built application, the ingress and everything it binds."""
    from ray.serve._private.build_app import build_app as serve_build_app

    return serve_build_app(app, name="raystack").deployments
