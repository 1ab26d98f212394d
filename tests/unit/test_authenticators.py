"""The authenticators against real HTTP peers on loopback: an identity provider serving a JWKS
and signing tokens, and a custom endpoint that checks tokens."""

import base64
import json
import time

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from providers.access.auth_config import AuthConfig
from providers.access.authenticators import build_authenticator
from providers.api.errors import AuthenticationError, ServiceUnavailableError
from tests.conftest import free_port

REQUEST = {"method": "GET", "path": "/v1/models", "headers": {}}


async def serve(app: web.Application):
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"http://127.0.0.1:{port}", runner


class IdentityProvider:
    """Signs tokens with a key it publishes as a JWKS; `rotate` switches to a new key."""

    def __init__(self):
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.jwks_requests = 0
        self.rotate()

    def rotate(self):
        self.kid = f"key-{len(self.keys)}"
        self.keys[self.kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    async def jwks(self, request):
        self.jwks_requests += 1
        keys = [{**RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": kid, "alg": "RS256", "use": "sig"}
                for kid, k in self.keys.items()]
        return web.json_response({"keys": keys})

    def token(self, key=None, **claims) -> str:
        body = {"sub": "alice", "aud": "raystack", "iss": "https://idp.test", "exp": time.time() + 300,
                "groups": ["red", "blue"], "project": "apollo", **claims}
        return jwt.encode(body, key or self.keys[self.kid], algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture
async def idp():
    provider = IdentityProvider()
    app = web.Application()
    app.router.add_get("/jwks", provider.jwks)
    url, runner = await serve(app)
    provider.url = url
    yield provider
    await runner.cleanup()


def jwt_authenticator(url: str):
    return build_authenticator(AuthConfig.model_validate({"provider_config": {
        "type": "oauth2_token", "jwks": {"uri": f"{url}/jwks"}, "issuer": "https://idp.test", "audience": "raystack",
    }}))


async def test_static_tokens_map_to_identities():
    auth = build_authenticator(AuthConfig.model_validate({"provider_config": {
        "type": "static_tokens", "tokens": {"tok-a": {"principal": "alice", "attributes": {"teams": "red"}}}}}))
    identity = await auth.authenticate("tok-a", REQUEST)
    assert identity.principal == "alice" and identity.attributes == {"teams": ["red"]}
    with pytest.raises(AuthenticationError):
        await auth.authenticate("tok-b", REQUEST)


async def test_a_valid_jwt_gives_principal_and_mapped_attributes(idp):
    auth = jwt_authenticator(idp.url)
    identity = await auth.authenticate(idp.token(), REQUEST)
    assert identity.principal == "alice"
    assert identity.attributes["teams"] == ["red", "blue"]
    assert identity.attributes["projects"] == ["apollo"]
    await auth.authenticate(idp.token(sub="bob"), REQUEST)
    assert idp.jwks_requests == 1, "keys are cached between requests"
    await auth.close()


async def test_a_jwt_whose_kid_is_a_list_is_a_401(idp):
    auth = jwt_authenticator(idp.url)
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    token = ".".join([part({"alg": "RS256", "typ": "JWT", "kid": [idp.kid]}),
                      part({"sub": "alice", "aud": "raystack", "exp": time.time() + 300}), "c2lnbmF0dXJl"])
    with pytest.raises(AuthenticationError, match="invalid bearer token: .*string"):
        await auth.authenticate(token, REQUEST)
    await auth.close()


@pytest.mark.parametrize("claims, why", [
    ({"exp": time.time() - 3600}, "expired"),
    ({"aud": "someone-else"}, "audience"),
    ({"iss": "https://evil.test"}, "issuer"),
])
async def test_expired_or_misaddressed_tokens_are_rejected(idp, claims, why):
    auth = jwt_authenticator(idp.url)
    with pytest.raises(AuthenticationError, match="invalid bearer token"):
        await auth.authenticate(idp.token(**claims), REQUEST)
    await auth.close()


async def test_forged_and_garbage_tokens_are_rejected(idp):
    auth = jwt_authenticator(idp.url)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(idp.token(key=forger), REQUEST)
    with pytest.raises(AuthenticationError):
        await auth.authenticate("not-a-jwt", REQUEST)
    await auth.close()


async def test_a_rotated_key_is_fetched_when_first_seen(idp):
    auth = jwt_authenticator(idp.url)
    await auth.authenticate(idp.token(), REQUEST)
    idp.rotate()
    auth._fetched_at -= 60  # the unknown-key refresh is rate limited to one per 10 s
    assert (await auth.authenticate(idp.token(), REQUEST)).principal == "alice"
    assert idp.jwks_requests == 2
    await auth.close()


async def test_an_unreachable_identity_provider_is_a_503_not_a_401():
    auth = jwt_authenticator(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceUnavailableError):
        await auth.authenticate(jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256"), REQUEST)
    await auth.close()


@pytest.fixture
async def custom_endpoint():
    seen = []

    async def check(request):
        body = await request.json()
        seen.append(body)
        if body["api_key"] == "good":
            return web.json_response({"principal": "svc", "attributes": {"namespaces": ["prod"]}})
        if body["api_key"] == "broken":
            return web.Response(status=500)
        return web.json_response({"message": "token revoked"}, status=401)

    app = web.Application()
    app.router.add_post("/check", check)
    url, runner = await serve(app)
    yield f"{url}/check", seen
    await runner.cleanup()


async def test_custom_endpoint_decides_and_sees_the_request(custom_endpoint):
    endpoint, seen = custom_endpoint
    auth = build_authenticator(AuthConfig.model_validate({"provider_config": {"type": "custom", "endpoint": endpoint}}))
    identity = await auth.authenticate("good", REQUEST)
    assert identity.principal == "svc" and identity.attributes == {"namespaces": ["prod"]}
    assert seen[0]["request"]["path"] == "/v1/models"
    with pytest.raises(AuthenticationError, match="token revoked"):
        await auth.authenticate("bad", REQUEST)
    with pytest.raises(ServiceUnavailableError):
        await auth.authenticate("broken", REQUEST)
    await auth.close()
