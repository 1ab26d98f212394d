"""The shipped serve deploy config is generated from the run config and valid for Serve."""

from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from graphs.serve_config import serve_config


def test_shipped_serve_config_is_the_generated_one_and_validates():
    path = Path(__file__).parents[2] / "cluster" / "serve-starter.yaml"
    shipped = yaml.safe_load(path.read_text())
    assert shipped == serve_config("starter"), "regenerate: python -m graphs.serve_config starter"
    schema = ServeDeploySchema.model_validate(shipped)
    assert schema.http_options.port == 8000
    assert schema.applications[0].import_path == "graphs.builder:build"
