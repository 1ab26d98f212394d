"""Fine-tuning and evaluation throughput: LoRA training tokens/s on Ray Train with 1 and 2 workers,
against torchtune's own single-device LoRA recipe on the same model, rows and settings; then
evaluation rows/s through the starter graph.

    python -m bench.train [--model DIR] [--steps 24] [--rounds 2] [--rows 256] [--eval-rows 32]
                          [--plot PATH] [--skip-eval]

The model defaults to the starter's SmolLM2-135M. Each run trains `--steps` optimizer steps of
batch 4 on the same tokenized rows; tokens/s counts trained (answer) tokens, the median over the
steps after the first two. The 2-core budget is split evenly: one worker gets 2 CPUs (2 torch
threads), two workers 1 each; torchtune's recipe runs in this process with 2 threads. The three
runs alternate for `--rounds` rounds, and the medians over the rounds are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from providers.inline.torchtune.recipe import Tokenize, conversation

LORA = {"attn_modules": ["q_proj", "v_proj"], "apply_to_mlp": False, "apply_to_output": False, "rank": 8, "alpha": 16}
BATCH, SEQ_LEN, LR = 4, 128, 3e-4


def rows(count: int) -> list[dict[str, Any]]:
    return [{"messages": [{"role": "user", "content": f"What is {i} plus {i + 1}? Answer in a sentence."},
                          {"role": "assistant", "content": f"{i} plus {i + 1} is {2 * i + 1}, an odd number."}]}
            for i in range(count)]


def ray_train_tokens_per_second(model: str, dataset_dir: str, workers: int, steps: int, artifacts: str) -> float:
    from providers.inline.torchtune.config import TorchtuneConfig
    from providers.inline.torchtune.provider import TorchtunePostTraining

    cpus = 2.0 / workers
    provider = TorchtunePostTraining(TorchtuneConfig(artifacts_dir=artifacts, num_workers=workers,
                                                     resources_per_worker={"CPU": cpus}, data_cpus=0))
    spec = {"checkpoint_dir": model, "lora": LORA, "n_epochs": 1, "max_steps_per_epoch": steps,
            "gradient_accumulation_steps": 1, "batch_size": BATCH // workers, "optimizer": "adamw", "lr": LR,
            "weight_decay": 0.0, "num_warmup_steps": 0, "dtype": "fp32", "max_seq_len": SEQ_LEN}

    async def run() -> dict[str, Any]:
        job = f"bench-{workers}w-{int(time.time())}"
        await provider.start(job, spec, dataset_dir, False, False)
        while (state := await provider.state(job))["status"] not in ("completed", "failed"):
            await asyncio.sleep(1)
        await provider.release(job)
        return state

    state = asyncio.run(run())
    if state["status"] != "completed":
        raise RuntimeError(state["error"])
    return statistics.median(p["tokens_per_second"] for p in state["progress"][2:])


class PretokenizedRows:
    """torchtune dataset component: the benchmark's rows tokenized exactly as the Ray Train path does."""

    def __init__(self, tokenizer: Any, model: str, dataset_dir: str):
        encode = Tokenize(model, SEQ_LEN, train_on_input=False).encode
        table = pq.read_table(dataset_dir)
        self.samples = [dict(zip(("tokens", "labels"), encode(conversation(row)))) for row in table.to_pylist()]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.samples[index]


class PadOnly:
    """torchtune tokenizer component: the recipe only reads `pad_id` (the rows come tokenized)."""

    pad_id = 0


def torchtune_recipe_tokens_per_second(model: str, dataset_dir: str, steps: int, output: str) -> float:
    import torch
    from omegaconf import OmegaConf

    from providers.inline.torchtune.model import architecture

    torch.set_num_threads(2)
    recipe_file = Path(importlib.util.find_spec("recipes").origin).parent / "lora_finetune_single_device.py"
    spec = importlib.util.spec_from_file_location("torchtune_lora_single_device", recipe_file)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    args = architecture(model)
    tied = args.pop("tie_word_embeddings")
    files = sorted(p.name for p in Path(model).glob("*.safetensors"))
    cfg = OmegaConf.create({
        "output_dir": output, "device": "cpu", "dtype": "fp32", "seed": 0, "shuffle": False, "batch_size": BATCH,
        "epochs": 1, "max_steps_per_epoch": steps, "gradient_accumulation_steps": 1, "compile": False,
        "resume_from_checkpoint": False, "save_adapter_weights_only": True, "log_every_n_steps": 1,
        "model": {"_component_": "torchtune.models.llama3_2.lora_llama3_2" if tied else
                  "torchtune.models.llama3_1.lora_llama3_1", **args, "max_seq_len": SEQ_LEN,
                  "lora_attn_modules": LORA["attn_modules"], "apply_lora_to_mlp": False, "lora_rank": LORA["rank"],
                  "lora_alpha": LORA["alpha"], **({"tie_word_embeddings": True} if tied else {})},
        "tokenizer": {"_component_": "bench.train.PadOnly"},
        "dataset": {"_component_": "bench.train.PretokenizedRows", "model": model, "dataset_dir": dataset_dir},
        "checkpointer": {"_component_": "torchtune.training.FullModelHFCheckpointer", "checkpoint_dir": model,
                         "checkpoint_files": files, "output_dir": output,
                         "model_type": "LLAMA3_2" if tied else "LLAMA3"},
        "optimizer": {"_component_": "torch.optim.AdamW", "lr": LR, "weight_decay": 0.0},
        "lr_scheduler": {"_component_": "torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup",
                         "num_warmup_steps": 0},
        "loss": {"_component_": "torch.nn.CrossEntropyLoss"},
        "metric_logger": {"_component_": "torchtune.training.metric_logging.DiskLogger", "log_dir": f"{output}/logs"},
        "profiler": {"_component_": "torchtune.training.setup_torch_profiler", "enabled": False},
    })
    run = recipe.LoRAFinetuneRecipeSingleDevice(cfg)
    run.setup(cfg)
    run.train()
    run.cleanup()
    log = next(Path(output, "logs").glob("*.txt")).read_text()
    values = [float(v) for v in re.findall(r"tokens_per_second_per_gpu:([0-9.]+)", log)]
    return statistics.median(values[2:])


def eval_rows_per_second(count: int, state_dir: str) -> float:
    """An evaluation of SmolLM2 over `count` question-answer rows through the starter graph."""
    import httpx
    import ray
    from ray import serve

    from graphs.builder import build_app, resolve_config_path
    from providers.run_config import load_run_config

    os.environ["RAYSTACK_STATE_DIR"] = state_dir
    serve.start(http_options={"host": "127.0.0.1", "port": 8765})
    serve.run(build_app(load_run_config(resolve_config_path("starter"))), name="bench-eval", route_prefix="/")
    questions = [{"input_query": f"What is the capital of country number {i}?", "expected_answer": "Paris"}
                 for i in range(count)]
    with httpx.Client(base_url="http://127.0.0.1:8765", timeout=600) as http:
        http.post("/v1beta/datasets", json={"dataset_id": "bench-qa", "purpose": "eval/question-answer",
                                            "source": {"type": "rows", "rows": questions}}).raise_for_status()
        http.post("/v1alpha/eval/benchmarks", json={"benchmark_id": "bench", "dataset_id": "bench-qa",
                                                    "scoring_functions": ["basic::subset_of"]}).raise_for_status()
        config = {"eval_candidate": {"model": "SmolLM2-135M-Instruct", "sampling_params": {"max_tokens": 16}}}
        job = http.post("/v1alpha/eval/benchmarks/bench/jobs", json={"benchmark_config": config}).json()
        while (status := http.get(f"/v1alpha/eval/benchmarks/bench/jobs/{job['job_id']}").json())["status"] == "in_progress":
            time.sleep(1)
    serve.delete("bench-eval")
    ray.shutdown()
    if status["status"] != "completed":
        raise RuntimeError(status["error"])
    return status["progress"]["rows_per_second"]


def plot(figures: dict[str, float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in figures if n.startswith("train")]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, [figures[n] for n in names], color=["tab:gray", "tab:blue", "tab:green"])
    ax.bar_label(ax.containers[0], fmt="%.0f")
    ax.set_ylabel("trained tokens/s")
    ax.set_title("LoRA fine-tuning on 2 CPU cores")
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="an HF Llama-family folder (default: the starter's SmolLM2)")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--eval-rows", type=int, default=32)
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--plot", metavar="PATH")
    args = parser.parse_args(argv)
    import ray

    from providers.inline.vllm.local_models import ensure_smollm2

    model = args.model or str(ensure_smollm2())
    work = Path(tempfile.mkdtemp(prefix="raystack-bench-train-"))
    dataset_dir = work / "dataset"  # laid out as inline::parquet stores a dataset
    (dataset_dir / "part-000000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows(args.rows)), dataset_dir / "part-000000" / "rows.parquet")
    runs: dict[str, list[float]] = {"train torchtune recipe": [], "train ray 1w": [], "train ray 2w": []}
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2)
    for round_no in range(1, args.rounds + 1):
        runs["train torchtune recipe"].append(torchtune_recipe_tokens_per_second(
            model, str(dataset_dir), args.steps, str(work / f"recipe-{round_no}")))
        for workers in (1, 2):
            runs[f"train ray {workers}w"].append(ray_train_tokens_per_second(
                model, str(dataset_dir), workers, args.steps, str(work / "ray")))
        print(f"round {round_no}: " + ", ".join(f"{name} {values[-1]:.0f} tokens/s" for name, values in runs.items()),
              flush=True)
    figures = {name: statistics.median(values) for name, values in runs.items()}
    for workers in (1, 2):
        ratio = figures[f"train ray {workers}w"] / figures["train torchtune recipe"]
        print(f"Ray Train, {workers} worker(s): {figures[f'train ray {workers}w']:.0f} tokens/s, {ratio:.2f}x "
              f"torchtune's recipe ({figures['train torchtune recipe']:.0f} tokens/s)", flush=True)
    if not args.skip_eval:
        figures["eval rows/s"] = eval_rows_per_second(args.eval_rows, str(work / "starter"))
        print(f"evaluation through the starter graph: {figures['eval rows/s']:.2f} rows/s", flush=True)
    ray.shutdown()
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
    if args.plot:
        plot(figures, args.plot)


if __name__ == "__main__":
    main()
