"""The provider registry and how deployment options merge."""

import pytest

from graphs.builder import merge_options
from providers.registry import UnknownProviderType, get_spec
from providers.run_config import DeploymentOptions


def test_every_spec_config_class_imports_without_heavy_modules():
    """In a fresh interpreter: the test session itself has imported torch by now (tiny models are built in it)."""
    import subprocess
    import sys

    check = ("import sys\nfrom providers.registry import PROVIDER_SPECS\n"
             "for spec in PROVIDER_SPECS: spec.config_model()\n"
             "print(sorted(m for m in ('vllm', 'torch', 'torchtune', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_unknown_type_lists_known_types():
    with pytest.raises(UnknownProviderType) as err:
        get_spec("inline::nope")
    assert "inline::vllm" in str(err.value)


def test_user_options_merge_over_defaults_key_by_key():
    defaults = get_spec("inline::vllm").deployment_defaults
    merged = merge_options(defaults, DeploymentOptions(autoscaling_config={"max_replicas": 4}, ray_actor_options={"num_gpus": 1}))
    assert merged["autoscaling_config"]["max_replicas"] == 4
    assert merged["autoscaling_config"]["min_replicas"] == defaults["autoscaling_config"]["min_replicas"]
    assert merged["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 1}
    assert defaults["autoscaling_config"]["max_replicas"] == 1, "defaults must not be mutated"


def test_fixed_replica_count_replaces_autoscaling():
    merged = merge_options(get_spec("remote::openai").deployment_defaults, DeploymentOptions(num_replicas=2))
    assert merged["num_replicas"] == 2 and "autoscaling_config" not in merged
