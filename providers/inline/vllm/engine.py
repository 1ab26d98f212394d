"""VLLMProvider: vLLM's AsyncLLM in the replica, driven through vLLM's own OpenAI serving layer so
templates, sampling, structured outputs, tool parsing and streaming match `vllm serve`."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from pydantic import ValidationError
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest as VLLMChatRequest
from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
from vllm.entrypoints.openai.completion.protocol import CompletionRequest as VLLMCompletionRequest
from vllm.entrypoints.openai.completion.serving import OpenAIServingCompletion
from vllm.entrypoints.openai.models.protocol import BaseModelPath
from vllm.entrypoints.openai.models.serving import OpenAIServingModels
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.exception_handling.error_response import create_error_response
from vllm.entrypoints.serve.lora.protocol import LoadLoRAAdapterRequest
from vllm.entrypoints.serve.tokenize.protocol import TokenizeChatRequest
from vllm.entrypoints.serve.tokenize.serving import ServingTokenization
from vllm.renderers.chat_utils import load_chat_template
from vllm.renderers.online_renderer import OnlineRenderer
from vllm.v1.engine.async_llm import AsyncLLM

from providers.api.errors import APIError, InvalidRequestError, ProviderError, ServiceUnavailableError
from providers.api.inference import TOKENIZE_FIELDS, ChatCompletionRequest, CompletionRequest, ProviderModel
from providers.inline.vllm.background import BackgroundGate
from providers.inline.vllm.config import VLLMProviderConfig
from providers.inline.vllm.local_models import builtin_chat_template, builtin_engine_args, resolve_model


class VLLMProvider:
    """One model in an in-process vLLM engine (engine start is synchronous: tens of seconds)."""

    def __init__(self, config: VLLMProviderConfig):
        os.environ.update(config.env)
        self.config = config
        self.model_name = config.model_name()
        path = self.weights = resolve_model(config.model)
        os.environ.setdefault("VLLM_MEDIA_URL_ALLOW_REDIRECTS", "0")  # a redirect could leave the allowed hosts
        args = AsyncEngineArgs(model=path, served_model_name=self.model_name, **engine_arguments(config))
        self.engine = AsyncLLM.from_engine_args(args)
        self._chat, self._completion, self._tokenize, self._models = _serving(self.engine, config, self.model_name, path)
        self.adapters = LoraAdapters(config.adapters_dir, self._models) if config.adapters_dir else None
        self.gate = BackgroundGate(config.background_while_interactive, config.background_quiet_s)

    async def list_models(self) -> list[ProviderModel]:
        context_length = self.engine.model_config.max_model_len
        base = ProviderModel(provider_model_id=self.model_name, metadata={"context_length": context_length})
        adapters = await self.adapters.available(self.model_name, context_length) if self.adapters else []
        return [base, *adapters]

    async def weights_dir(self, provider_model_id: str) -> str | None:
        """The local HF folder of the base model (what fine-tuning starts from), whatever the run
        config names it; None for a LoRA adapter."""
        if self.adapters is not None and provider_model_id != self.model_name and self.adapters.has(provider_model_id):
            return None
        return self.weights

    async def chat_completion(self, request: ChatCompletionRequest, provider_model_id: str):
        served = await self._served_name(provider_model_id)
        return await self._generate(VLLMChatRequest, self._chat.create_chat_completion, request, served)

    async def completion(self, request: CompletionRequest, provider_model_id: str):
        served = await self._served_name(provider_model_id)
        return await self._generate(VLLMCompletionRequest, self._completion.create_completion, request, served)

    async def count_tokens(self, request: ChatCompletionRequest, provider_model_id: str) -> int:
        """The prompt tokens of a chat request: its messages and tools through the model's chat template."""
        body = _body(request, await self._served_name(provider_model_id))
        tokenize = {"model": body["model"], **{k: body[k] for k in TOKENIZE_FIELDS if k in body}}
        result = await _call(self._tokenize.create_tokenize(_validated(TokenizeChatRequest, tokenize), None))
        if isinstance(result, ErrorResponse):
            raise _api_error(result)
        return result.count

    async def _served_name(self, provider_model_id: str) -> str:
        """A LoRA adapter under adapters_dir (loaded on its first request) when the id names one, else
        the base model (the run config may name it differently from the engine)."""
        if provider_model_id == self.model_name or self.adapters is None:
            return self.model_name
        return await self.adapters.load(provider_model_id) or self.model_name

    async def _generate(self, request_type, handler, request: ChatCompletionRequest | CompletionRequest, served: str):
        """Run one of vLLM's OpenAI handlers: a response dict, or chunk dicts for a stream. A whole
        answer of a later priority waits its turn at the gate; an interactive one holds it."""
        if request.stream:
            self.gate.touch()
            result = await _call(handler(_validated(request_type, _body(request, served))))
            if isinstance(result, ErrorResponse):
                raise _api_error(result)
            return _chunks(result, request.model, self.gate.touch)
        lane = self.gate.background_request() if (request.priority or 0) > 0 else self.gate.interactive_request()
        async with lane:
            result = await _call(handler(_validated(request_type, _body(request, served))))
        if isinstance(result, ErrorResponse):
            raise _api_error(result)
        data = result.model_dump(mode="json")
        data["model"] = request.model
        return data

    async def health(self) -> dict[str, Any]:
        try:
            await self.check_alive()
        except APIError as exc:
            return {"status": "Error", "message": exc.message}
        return {"status": "OK"}

    async def check_alive(self) -> None:
        """Raises when the engine is dead, so Serve replaces the replica."""
        try:
            await self.engine.check_health()
        except Exception as exc:
            raise ProviderError(f"vLLM engine for '{self.model_name}' is dead: {exc!r}") from None

    async def shutdown(self) -> None:
        await asyncio.to_thread(self.engine.shutdown)


# vLLM fetches media from any host when its list is empty; a name under .invalid never resolves.
NO_MEDIA_HOST = "no-media-urls.invalid"


def engine_arguments(config: VLLMProviderConfig) -> dict[str, Any]:
    """AsyncEngineArgs of the provider config, besides the model and its served name."""
    engine_args = {**builtin_engine_args(config.model), **config.engine_args,
                   "allowed_media_domains": config.allowed_media_domains or [NO_MEDIA_HOST]}
    if config.adapters_dir:
        engine_args.update(enable_lora=True, max_loras=config.max_loras, max_lora_rank=config.max_lora_rank)
    if config.use_gpu and config.shards() > 1:  # the workers go in the replica's placement group
        engine_args.setdefault("distributed_executor_backend", "ray")
    return engine_args


def _serving(engine: AsyncLLM, config: VLLMProviderConfig, name: str, path: str):
    """vLLM's chat and completion handlers, wired as `vllm serve` wires them."""
    template = load_chat_template(config.chat_template or builtin_chat_template(config.model))
    tools = {
        "enable_auto_tools": config.enable_auto_tool_choice,
        "tool_parser": config.tool_call_parser,
        "tool_strict_level": config.tool_strict_level,
    }
    common = {"request_logger": None, "chat_template": template, "chat_template_content_format": "auto"}
    renderer = OnlineRenderer(engine.model_config, engine.renderer, **common, **tools)
    models = OpenAIServingModels(engine, [BaseModelPath(name=name, model_path=path)])
    # Usage reports the prompt tokens found in vLLM's prefix cache, as OpenAI's `cached_tokens`.
    chat = OpenAIServingChat(engine, models, config.response_role, online_renderer=renderer,
                             enable_prompt_tokens_details=True, **common, **tools)
    completion = OpenAIServingCompletion(engine, models, online_renderer=renderer, request_logger=None,
                                         enable_prompt_tokens_details=True)
    tokenize = ServingTokenization(models, renderer, chat_template=template, chat_template_content_format="auto")
    return chat, completion, tokenize, models


class LoraAdapters:
    """PEFT adapters under one folder, each named by its relative path (`<job>/epoch_0`), loaded into
    the engine on first use, so every replica (and a restarted one) finds them on its own."""

    def __init__(self, folder: str, models: OpenAIServingModels):
        self.root = Path(folder).expanduser().resolve()
        self.models = models
        self._loading = asyncio.Lock()
        self._not_adapters: set[str] = set()

    async def available(self, base: str, context_length: int) -> list[ProviderModel]:
        found = await asyncio.to_thread(lambda: sorted(self.root.glob("**/adapter_config.json")))
        return [ProviderModel(provider_model_id=str(f.parent.relative_to(self.root)),
                              metadata={"context_length": context_length, "base_model": base,
                                        "adapter_path": str(f.parent)}) for f in found]

    def _path(self, name: str) -> Path | None:
        path = (self.root / name).resolve()
        return path if path.is_relative_to(self.root) and (path / "adapter_config.json").exists() else None

    def has(self, name: str) -> bool:
        return name in self.models.lora_requests or self._path(name) is not None

    async def load(self, name: str) -> str | None:
        """The adapter's served name once it is loaded; None when no adapter has that name."""
        if name in self.models.lora_requests:
            return name
        if name in self._not_adapters:
            return None
        async with self._loading:
            if name in self.models.lora_requests:
                return name
            path = self._path(name)
            if path is None:
                self._not_adapters.add(name)  # models are registered only once their adapter exists
                return None
            result = await self.models.load_lora_adapter(LoadLoRAAdapterRequest(lora_name=name, lora_path=str(path)))
            if isinstance(result, ErrorResponse):
                raise InvalidRequestError(f"model: LoRA adapter '{name}' did not load: {result.error.message}",
                                          param="model")
            return name


# OpenAI's default temperature, for requests of several choices that name none: a model whose
# generation_config is greedy would give n copies of one answer, and vLLM refuses n > 1 greedily.
SAMPLED_TEMPERATURE = 1.0


def _body(request: ChatCompletionRequest | CompletionRequest, model_name: str) -> dict[str, Any]:
    body = request.model_dump(mode="json", exclude_unset=True, by_alias=True)
    body["model"] = model_name
    if (body.get("n") or 1) > 1 and body.get("temperature") is None:
        body["temperature"] = SAMPLED_TEMPERATURE
    return body


def _validated(request_type, body: dict[str, Any]):
    try:
        return request_type.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequestError(_validation_message(exc), param=_validation_param(exc)) from None
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError(str(exc)) from None


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors())


def _validation_param(exc: ValidationError) -> str | None:
    locations = [e["loc"] for e in exc.errors() if e["loc"]]
    return str(locations[0][0]) if locations else None


async def _call(awaitable):
    """Await a vLLM handler, turning what it raises into our API errors."""
    try:
        return await awaitable
    except APIError:
        raise
    except Exception as exc:
        raise _api_error(create_error_response(exc)) from None


def _api_error(response: ErrorResponse) -> APIError:
    error = response.error
    if error.code in (400, 422, 501):
        return InvalidRequestError(error.message, param=error.param)
    if error.code == 503:
        return ServiceUnavailableError(f"vLLM: {error.message}")
    return ProviderError(f"vLLM engine failed ({error.code} {error.type}): {error.message}")


async def _chunks(events: AsyncIterator[str], model: str, on_event: Callable[[], None]) -> AsyncIterator[dict]:
    """vLLM's SSE events back to chunk dicts carrying the client's model id."""
    try:
        async for event in events:
            on_event()
            for line in event.splitlines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                chunk = json.loads(payload)
                if "error" in chunk:
                    raise _api_error(ErrorResponse.model_validate(chunk))
                chunk["model"] = model
                yield chunk
    except APIError:
        raise
    except Exception as exc:
        raise _api_error(create_error_response(exc)) from None
    finally:
        await events.aclose()
