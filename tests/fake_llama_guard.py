"""A loopback stand-in for a hosted Llama Guard model behind an OpenAI-compatible API (as Together
or a vLLM server serves one): it reads the prompt's last user turn and answers as Llama Guard 3 would."""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from tests.loopback import serve_aiohttp

# A word in the user's turn -> the verdict; anything else is safe.
RULES = {"kill": "unsafe\nS1", "hate": "unsafe\nS10", "diagnose": "unsafe\nS6"}


def fake_verdict(model: str, prompt: str) -> str:
    """Llama Guard's answer about the prompt's last user turn; prose for the model 'chatty'."""
    if model == "chatty":
        return "I am a helpful assistant"
    conversation = prompt.split("<BEGIN CONVERSATION>")[1].split("<END CONVERSATION>")[0]
    turn = conversation.rsplit("User:", 1)[1].lower()
    return next((verdict for word, verdict in RULES.items() if word in turn), "safe")


def start_fake_llama_guard() -> tuple[str, list[dict], Callable[[], None]]:
    """(base URL ending in /v1, the request bodies it received, stop)."""
    bodies: list[dict] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        message = {"role": "assistant", "content": fake_verdict(body["model"], body["messages"][-1]["content"])}
        return web.json_response({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                                  "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    base_url, stop = serve_aiohttp(app)
    return f"{base_url}/v1", bodies, stop
