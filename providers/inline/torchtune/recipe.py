"""Supervised fine-tuning as a Ray Train worker function: torchtune's decoder and LoRA layers,
data parallel over the worker group (DDP), rows tokenized by a Ray Data stage before they reach
the workers. Rank 0 reports each optimizer step and each epoch's checkpoint to the job's sink."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from providers.api.datasets import column_value

IGNORE_INDEX = -100
# Rows each worker shuffles at a time, in its own iterator: Ray Data's random_shuffle starts tasks
# of a whole CPU, which a node whose CPUs the engine and the workers hold never grants.
SHUFFLE_BUFFER_ROWS = 4096


@dataclass(frozen=True)
class TrainSpec:
    """Everything a worker needs, picklable."""

    checkpoint_dir: str
    output_dir: str
    lora: dict[str, Any] | None
    n_epochs: int
    max_steps_per_epoch: int
    gradient_accumulation_steps: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    num_warmup_steps: int
    dtype: str
    max_seq_len: int
    threads_per_worker: int
    shuffle: bool = False
    seed: int = 0
    validation: bool = False  # a "validation" dataset is given: rank 0 reports its loss each epoch

    def as_config(self, sink: Any) -> dict[str, Any]:
        return {"spec": asdict(self), "sink": sink}


def conversation(row: dict[str, Any]) -> list[dict[str, str]]:
    """A row as a conversation ending in the assistant turn to learn: `messages` (plus
    `expected_answer` or `answer` when the row has one), or `input_query` (`question`) then the answer."""
    answer = column_value(row, "expected_answer")
    if row.get("messages"):
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        if answer is not None:
            messages.append({"role": "assistant", "content": str(answer)})
    else:
        messages = [{"role": "user", "content": str(column_value(row, "input_query"))},
                    {"role": "assistant", "content": str(answer)}]
    if messages[-1]["role"] != "assistant":
        raise ValueError("a training row must end with an assistant message")
    return messages


class Tokenize:
    """Ray Data stage: rows -> `tokens` and `labels` (the prompt masked unless `train_on_input`)."""

    def __init__(self, checkpoint_dir: str, max_seq_len: int, train_on_input: bool):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
        self.max_seq_len = max_seq_len
        self.train_on_input = train_on_input

    def __call__(self, batch: pa.Table) -> pa.Table:
        tokens, labels = [], []
        for row in batch.to_pylist():
            ids, mask = self.encode(conversation(row))
            tokens.append(ids)
            labels.append(mask)
        return pa.table({"tokens": tokens, "labels": labels})

    def encode(self, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
        template = self.tokenizer.apply_chat_template
        prompt = self._ids(template(messages[:-1], tokenize=False, add_generation_prompt=True))
        full = self._ids(template(messages, tokenize=False))
        labels = list(full)
        if not self.train_on_input and full[:len(prompt)] == prompt:
            labels[:len(prompt)] = [IGNORE_INDEX] * len(prompt)
        return full[:self.max_seq_len], labels[:self.max_seq_len]

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def train_loop(config: dict[str, Any]) -> None:
    """The function every Ray Train worker runs."""
    import ray.train
    import ray.train.torch
    import torch

    from providers.inline.torchtune.model import Lora, build_model, checkpointer, load_weights, save

    spec = TrainSpec(**config["spec"])
    sink = config["sink"]
    torch.manual_seed(spec.seed)
    torch.set_num_threads(spec.threads_per_worker)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    if rank == 0:
        sink.placement_group.remote(ray.util.get_current_placement_group())
    lora = Lora(**spec.lora) if spec.lora else None
    model = build_model(spec.checkpoint_dir, lora, spec.max_seq_len, spec.dtype)
    saver = checkpointer(spec.checkpoint_dir, spec.output_dir)
    load_weights(model, saver)
    model = ray.train.torch.prepare_model(model, parallel_strategy="ddp" if world > 1 else None)
    device = ray.train.torch.get_device()
    optimizer = _optimizer(spec, [p for p in model.parameters() if p.requires_grad])
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, spec.num_warmup_steps)))
    shard = ray.train.get_dataset_shard("train")
    step = 0
    for epoch in range(spec.n_epochs):
        losses = []
        for loss, tokens, seconds in _steps(model, optimizer, warmup, shard, spec, device, epoch):
            step += 1
            losses.append(loss)
            if rank == 0:
                sink.report.remote({"step": step, "epoch": epoch, "loss": loss, "tokens": tokens,
                                    "tokens_per_second": tokens / seconds if seconds else 0.0})
        if rank == 0:
            module = getattr(model, "module", model)
            valid_loss = _validation_loss(module, ray.train.get_dataset_shard("validation"), spec, device) \
                if spec.validation else None
            path = save(module, saver, lora, epoch, spec.output_dir)
            sink.checkpoint.remote({"epoch": epoch, "step": step, "path": str(path), "valid_loss": valid_loss,
                                    "train_loss": sum(losses) / len(losses) if losses else None})


def _optimizer(spec: TrainSpec, params: list):
    import torch

    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)


def _token_loss(model, tokens, labels):
    """Mean cross-entropy over the label tokens, and how many there were."""
    import torch
    import torch.nn.functional as F

    logits = model(tokens)
    # position i predicts token i + 1: shift the labels, not the (much larger) logits
    targets = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX)
    return loss, int((targets != IGNORE_INDEX).sum())


def _validation_loss(module, shard, spec: TrainSpec, device) -> float | None:
    """The token-weighted loss over the whole validation set, on the bare module (not DDP's wrapper,
    whose forward would wait for the other ranks)."""
    import torch

    total, count = 0.0, 0
    module.eval()
    with torch.no_grad():
        for batch in shard.iter_batches(batch_size=spec.batch_size, batch_format="pyarrow"):
            loss, trained = _token_loss(module, *_collate(batch, device))
            total += float(loss) * trained
            count += trained
    module.train()
    return total / count if count else None


def _steps(model, optimizer, scheduler, shard, spec: TrainSpec, device, epoch: int):
    """One epoch: yields (loss, trained tokens, seconds) per optimizer step, averaged and summed
    over the worker group. A shuffled epoch draws its order from the seed and the epoch."""
    import torch
    import torch.distributed as dist

    accumulate = spec.gradient_accumulation_steps
    loss_sum = torch.zeros(2, dtype=torch.float64)  # token-weighted loss, tokens
    started = time.perf_counter()
    steps = 0
    shuffle = {"local_shuffle_buffer_size": SHUFFLE_BUFFER_ROWS, "local_shuffle_seed": spec.seed + epoch} if spec.shuffle else {}
    for i, batch in enumerate(shard.iter_batches(batch_size=spec.batch_size, batch_format="pyarrow", **shuffle)):
        loss, trained = _token_loss(model, *_collate(batch, device))
        (loss / accumulate).backward()
        loss_sum += torch.tensor([float(loss.detach()) * trained, trained], dtype=torch.float64)
        if (i + 1) % accumulate:
            continue
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(loss_sum)
        seconds = time.perf_counter() - started
        yield float(loss_sum[0] / max(1.0, float(loss_sum[1]))), int(loss_sum[1]), seconds
        loss_sum.zero_()
        started = time.perf_counter()
        steps += 1
        if steps >= spec.max_steps_per_epoch:
            break


def _collate(batch: pa.Table, device):
    import torch

    tokens = batch.column("tokens").to_pylist()
    labels = batch.column("labels").to_pylist()
    width = max(len(t) for t in tokens)
    padded = torch.zeros(len(tokens), width, dtype=torch.long)
    masked = torch.full((len(tokens), width), IGNORE_INDEX, dtype=torch.long)
    for row, (ids, target) in enumerate(zip(tokens, labels)):
        padded[row, :len(ids)] = torch.tensor(ids)
        masked[row, :len(target)] = torch.tensor(target)
    return padded.to(device), masked.to(device)
