"""The server's door: a config that would open it to the network without authentication is refused at
startup, and the request guard answers only its own Host names, refuses web pages' requests while
authentication is off, authenticates before a body is read and caps the body's size."""

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError

from deployments.errors import install_error_handlers
from deployments.guard import RequestGuard
from deployments.routes import console
from providers.access.auth_config import AuthConfig
from providers.access.authenticators import build_authenticator
from providers.access.exposure import Exposure, host_name, is_loopback

TOKENS = AuthConfig.model_validate({"provider_config": {"type": "static_tokens", "tokens": {
    "tok-alice": {"principal": "alice"}}}})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "raystack.internal"])
def test_listening_beyond_loopback_without_auth_is_refused_at_startup(host):
    with pytest.raises(ValidationError, match="server.auth: the server would listen on"):
        Exposure(host=host)
    assert Exposure(host=host, allow_unauthenticated=True).host == host
    assert Exposure(host=host, auth=TOKENS).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_without_auth_is_allowed(host):
    assert Exposure(host=host).auth is None


@pytest.mark.parametrize("header, name", [("example.com:8000", "example.com"), ("[::1]:8000", "::1"),
                                          ("LOCALHOST", "localhost"), ("127.0.0.1", "127.0.0.1"), ("::1", "::1")])
def test_host_names_without_ports(header, name):
    assert host_name(header) == name


def test_a_loopback_server_answers_loopback_names_and_the_allowed_ones_only():
    door = Exposure(allowed_hosts=["raystack.lan"])
    assert door.answers("127.0.0.1:8000") and door.answers("localhost:8000") and door.answers("[::1]:8000")
    assert door.answers("raystack.lan:8000")
    assert not door.answers("attacker.example:8000"), "a rebound DNS name is not ours"
    assert not door.answers(None)
    assert not is_loopback("127.0.0.1.attacker.example")


def test_a_public_server_answers_any_name_unless_told_which():
    assert Exposure(host="0.0.0.0", auth=TOKENS).answers("10.0.0.5:8000")
    told = Exposure(host="0.0.0.0", auth=TOKENS, allowed_hosts=["api.example.com"])
    assert told.answers("api.example.com") and not told.answers("10.0.0.5:8000")


def guarded_app(exposure: Exposure, auth: AuthConfig | None) -> FastAPI:
    app = FastAPI()
    bodies = []

    @app.post("/v1/echo")
    async def echo(request: Request):
        body = await request.body()
        bodies.append(body)
        return {"bytes": len(body), "user": getattr(request.state, "user", None)}

    @app.get("/v1/health")
    async def health():
        return {"status": "OK"}

    install_error_handlers(app)
    app.add_middleware(RequestGuard, exposure=exposure, authenticator=build_authenticator(auth))
    app.state.bodies = bodies
    return app


async def call(app: FastAPI, method: str, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        return await client.request(method, path, **kwargs)


async def test_a_foreign_host_is_a_421_and_a_foreign_origin_a_403_with_auth_off():
    app = guarded_app(Exposure(), None)
    rebound = await call(app, "POST", "/v1/echo", content=b"x", headers={"host": "attacker.example:8000"})
    assert rebound.status_code == 421 and rebound.json()["error"]["param"] == "host"
    page = await call(app, "POST", "/v1/echo", content=b"x", headers={"origin": "http://attacker.example"})
    assert page.status_code == 403 and page.json()["error"]["code"] == "origin_not_allowed"
    local = await call(app, "POST", "/v1/echo", content=b"x", headers={"origin": "http://localhost:3000"})
    assert local.status_code == 200
    assert app.state.bodies == [b"x"], "refused requests never reached the route"


async def test_authentication_happens_before_the_body_is_read():
    app = guarded_app(Exposure(), TOKENS)
    anonymous = await call(app, "POST", "/v1/echo", content=b"a" * 4096)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
    assert app.state.bodies == []
    signed = await call(app, "POST", "/v1/echo", content=b"abc", headers={"authorization": "Bearer tok-alice"})
    assert signed.status_code == 200 and signed.json()["user"]["principal"] == "alice"
    assert (await call(app, "GET", "/v1/health")).status_code == 200, "health stays open"


async def test_a_body_over_the_limit_is_a_413_by_its_length_or_as_it_streams():
    app = guarded_app(Exposure(max_request_bytes=2048), None)
    declared = await call(app, "POST", "/v1/echo", content=b"a" * 4096)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"

    async def chunks():
        for _ in range(8):
            yield b"a" * 1024

    streamed = await call(app, "POST", "/v1/echo", content=chunks())
    assert streamed.status_code == 413 and "server.max_request_bytes" in streamed.json()["error"]["message"]
    assert app.state.bodies == []
    assert (await call(app, "POST", "/v1/echo", content=b"a" * 2048)).status_code == 200
    uploads = guarded_app(Exposure(max_request_bytes=2048, max_upload_bytes=8192), None)
    multipart = {"content-type": "multipart/form-data; boundary=x"}
    assert (await call(uploads, "POST", "/v1/echo", content=b"a" * 4096, headers=multipart)).status_code == 200
    assert (await call(uploads, "POST", "/v1/echo", content=b"a" * 9000, headers=multipart)).status_code == 413


def test_provider_configs_are_redacted_by_what_a_secret_is():
    from deployments.routes.inspect import redacted

    shown = redacted({"base_url": "https://user:hunter2@llm.internal/v1", "extra_headers": {"Authorization": "Bearer sk"},
                      "credentials": {"client": "id"}, "api_key": "**********", "nested": [{"auth_token": "t"}],
                      "cache": "redis://:hunter2@cache:6379/0", "timeout_s": 30})
    assert "hunter2" not in str(shown) and "Bearer sk" not in str(shown) and "'client'" not in str(shown)
    assert shown["base_url"] == "https://user:********@llm.internal/v1" and shown["timeout_s"] == 30


async def test_a_route_the_guard_leaves_open_has_no_caller_when_auth_is_on():
    """Fails closed: were a route that names its caller ever left open, its caller is not an admin."""
    from types import SimpleNamespace

    from deployments.routes.dependencies import UserDep

    app = FastAPI()

    @app.get("/v1/health")
    async def health(user: UserDep):
        return {"user": user}

    install_error_handlers(app)
    authenticator = build_authenticator(TOKENS)
    app.add_middleware(RequestGuard, exposure=Exposure(), authenticator=authenticator)
    app.state.services = SimpleNamespace(authenticator=authenticator)
    refused = await call(app, "GET", "/v1/health")
    assert refused.status_code == 401


async def test_the_console_files_are_served_without_a_token_and_nothing_beside_them():
    app = guarded_app(Exposure(), TOKENS)
    app.mount(console.PREFIX, console.ConsoleFiles())
    page = await call(app, "GET", "/ui/")
    assert page.status_code == 200 and "<title>raystack console</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"] and page.headers["x-content-type-options"] == "nosniff"
    assert (await call(app, "GET", "/ui/app.js")).headers["content-type"].startswith("text/javascript")
    assert (await call(app, "GET", "/ui")).headers["location"].endswith("/ui/")
    for path in ("/ui/%2e%2e/routes/console.py", "/ui/..%2froutes%2fconsole.py", "/ui/pages/", "/ui/missing.js"):
        response = await call(app, "GET", path)
        assert response.status_code == 404 and "ConsoleFiles" not in response.text, path
    assert (await call(app, "POST", "/v1/echo", content=b"x")).status_code == 401, "the API still needs the token"
