"""A torchtune decoder (LoRA or full) for an HF Llama-family checkpoint folder, its weights loaded
and saved through torchtune's HF checkpointer (merged safetensors plus a PEFT adapter)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchtune import training
from torchtune.models.llama3_1 import llama3_1, lora_llama3_1
from torchtune.models.llama3_2 import llama3_2, lora_llama3_2
from torchtune.modules.peft import (
    get_adapter_params,
    get_adapter_state_dict,
    get_lora_module_names,
    get_merged_lora_ckpt,
    set_trainable_params,
)
from torchtune.training.checkpointing import FullModelHFCheckpointer

_SUPPORTED = {"llama"}
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class UnsupportedModel(ValueError):
    pass


@dataclass(frozen=True)
class Lora:
    attn_modules: list[str]
    apply_to_mlp: bool
    apply_to_output: bool
    rank: int
    alpha: int
    use_dora: bool = False
    quantize_base: bool = False


def architecture(checkpoint_dir: str | Path) -> dict[str, Any]:
    """The builder arguments of the folder's HF config; UnsupportedModel for other families."""
    config = json.loads((Path(checkpoint_dir) / "config.json").read_text())
    if config.get("model_type") not in _SUPPORTED:
        raise UnsupportedModel(f"model_type '{config.get('model_type')}' is not supported for fine-tuning "
                               f"(supported: {', '.join(sorted(_SUPPORTED))})")
    scaling = config.get("rope_scaling") or {}
    return {
        "vocab_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "num_kv_heads": config.get("num_key_value_heads", config["num_attention_heads"]),
        "embed_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        "norm_eps": config.get("rms_norm_eps", 1e-5),
        "rope_base": config.get("rope_theta", 10000.0),
        # llama3-style scaled RoPE; a factor of 1 is plain RoPE
        "scale_factor": scaling.get("factor", 1) if scaling.get("rope_type") == "llama3" else 1,
        "tie_word_embeddings": config.get("tie_word_embeddings", False),
    }


def build_model(checkpoint_dir: str, lora: Lora | None, max_seq_len: int, dtype: str) -> torch.nn.Module:
    """Tied embeddings take torchtune's Llama 3.2 decoder, untied ones its Llama 3.1 decoder; both
    take the checkpoint's RoPE base and scaling."""
    args = {**architecture(checkpoint_dir), "max_seq_len": max_seq_len}
    tied = args["tie_word_embeddings"]
    if not tied:
        del args["tie_word_embeddings"]
    full, with_lora = (llama3_2, lora_llama3_2) if tied else (llama3_1, lora_llama3_1)
    with training.set_default_dtype(_DTYPES[dtype]):
        if lora is None:
            return full(**args)
        model = with_lora(lora.attn_modules, lora.apply_to_mlp, lora.apply_to_output, lora_rank=lora.rank,
                              lora_alpha=lora.alpha, use_dora=lora.use_dora, quantize_base=lora.quantize_base, **args)
    set_trainable_params(model, get_adapter_params(model))
    return model


def checkpointer(checkpoint_dir: str, output_dir: str) -> FullModelHFCheckpointer:
    files = sorted(p.name for p in Path(checkpoint_dir).glob("*.safetensors"))
    if not files:
        raise UnsupportedModel(f"{checkpoint_dir} holds no safetensors weights")
    tied = json.loads((Path(checkpoint_dir) / "config.json").read_text()).get("tie_word_embeddings", False)
    return FullModelHFCheckpointer(checkpoint_dir=checkpoint_dir, checkpoint_files=files,
                                   model_type="LLAMA3_2" if tied else "LLAMA3", output_dir=output_dir)


def load_weights(model: torch.nn.Module, saver: FullModelHFCheckpointer) -> None:
    state = saver.load_checkpoint()[training.MODEL_KEY]
    missing, unexpected = model.load_state_dict(state, strict=False)
    not_lora = [k for k in missing if "lora" not in k and "magnitude" not in k]
    if not_lora or unexpected:
        raise UnsupportedModel(f"checkpoint does not fit the model: missing {not_lora[:3]}, unexpected {unexpected[:3]}")


def save(model: torch.nn.Module, saver: FullModelHFCheckpointer, lora: Lora | None, epoch: int, output_dir: str) -> Path:
    """The epoch's checkpoint: merged HF weights, and for LoRA the PEFT adapter next to them."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if lora is None:
        saver.save_checkpoint({training.MODEL_KEY: state}, epoch=epoch)
    else:
        saver.save_checkpoint({
            training.ADAPTER_KEY: get_adapter_state_dict(state),
            training.MODEL_KEY: get_merged_lora_ckpt(state, rank=lora.rank, alpha=lora.alpha),
            training.ADAPTER_CONFIG: {
                "r": lora.rank, "lora_alpha": lora.alpha, "peft_type": "LORA",
                "target_modules": get_lora_module_names(lora.attn_modules, lora.apply_to_mlp, lora.apply_to_output),
            },
        }, epoch=epoch)
    return Path(output_dir) / f"epoch_{epoch}"
