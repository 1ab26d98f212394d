"""The OpenAPI document clients generate code from and schemathesis fuzzes (tests/e2e/test_fuzz.py):
every operation that answers 200 says what it answers."""

from types import SimpleNamespace

from deployments.ingress import build_fastapi_app
from providers.run_config import ServerConfig

# Answers `null`, as Llama Stack's cancel does.
BODILESS = {("post", "/v1alpha/post-training/job/cancel")}


def operations():
    document = build_fastapi_app(SimpleNamespace(authenticator=None), ServerConfig()).openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_every_operation_answering_200_declares_its_body():
    undeclared = [(method, path) for method, path, operation in operations()
                  if "200" in operation["responses"] and (method, path) not in BODILESS
                  and not any(c.get("schema") for c in operation["responses"]["200"].get("content", {}).values())]
    assert undeclared == []


def test_streaming_operations_declare_their_events_beside_the_whole_answer():
    streaming = {(method, path) for method, path, operation in operations()
                 if "text/event-stream" in operation["responses"].get("200", {}).get("content", {})}
    assert streaming == {("post", "/v1/chat/completions"), ("post", "/v1/completions"), ("post", "/v1/responses"),
                         ("get", "/v1/responses/{response_id}"), ("post", "/v1/messages")}
