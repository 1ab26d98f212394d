"""The three authenticators. Each turns a bearer token into an Identity or raises a 401; an
identity provider that cannot be reached is a 503, not a 401."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Protocol

import httpx

from providers.access.auth_config import AuthConfig, CustomAuth, OAuth2TokenAuth, StaticTokensAuth
from providers.access.identity import Identity
from providers.api.errors import AuthenticationError, ServiceUnavailableError


class Authenticator(Protocol):
    async def authenticate(self, token: str, request: dict[str, Any]) -> Identity:
        """`request` carries the method, path and headers (without the token) for custom checks."""
        ...

    async def close(self) -> None: ...


class StaticTokenAuthenticator:
    def __init__(self, config: StaticTokensAuth):
        self.tokens = config.tokens

    async def authenticate(self, token: str, request: dict[str, Any]) -> Identity:
        identity = self.tokens.get(token)
        if identity is None:
            raise AuthenticationError("invalid bearer token")
        return identity

    async def close(self) -> None:
        pass


class JWTAuthenticator:
    """Verifies signature, expiry, issuer and audience; keys come from the JWKS, refreshed every
    `key_recheck_period` and at most every `_UNKNOWN_KID_REFRESH_S` for a key id it has not seen."""

    _UNKNOWN_KID_REFRESH_S = 10.0

    def __init__(self, config: OAuth2TokenAuth):
        self.config = config
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._refresh = asyncio.Lock()
        self._http: httpx.AsyncClient | None = None

    async def authenticate(self, token: str, request: dict[str, Any]) -> Identity:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid bearer token: {exc}") from None
        key = await self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                token, key, algorithms=self.config.algorithms, audience=self.config.audience,
                issuer=self.config.issuer, leeway=self.config.leeway_s,
                options={"require": ["exp", self.config.principal_claim]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid bearer token: {exc}") from None
        return Identity(principal=str(claims[self.config.principal_claim]), attributes=self._attributes(claims))

    def _attributes(self, claims: dict[str, Any]) -> dict[str, list[str]]:
        attributes: dict[str, list[str]] = {}
        for claim, attribute in self.config.claims_mapping.items():
            value = claims.get(claim)
            if value is None:
                continue
            values = value.split() if claim == "scope" else value if isinstance(value, list) else [value]
            attributes.setdefault(attribute, []).extend(str(v) for v in values)
        return attributes

    def _needs_keys(self, kid: str | None) -> bool:
        age = time.monotonic() - self._fetched_at
        return age > self.config.jwks.key_recheck_period or (kid not in self._keys and age > self._UNKNOWN_KID_REFRESH_S)

    async def _key(self, kid: str | None) -> Any:
        if self._needs_keys(kid):
            async with self._refresh:
                if self._needs_keys(kid):
                    await self._fetch_keys()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise AuthenticationError("invalid bearer token: signed with a key the identity provider does not list")
        return self._keys[kid]

    async def _fetch_keys(self) -> None:
        import jwt

        self._http = self._http or httpx.AsyncClient(timeout=10)
        try:
            response = await self._http.get(self.config.jwks.uri)
            response.raise_for_status()
            jwks = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise ServiceUnavailableError(f"cannot read the identity provider's JWKS: {exc}", code="auth_unavailable") from None
        self._keys = {k.key_id: k.key for k in jwks.keys}
        self._fetched_at = time.monotonic()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()


class CustomEndpointAuthenticator:
    """POSTs `{"api_key": token, "request": {method, path, headers}}` to the endpoint; a 200 with
    `{"principal": ..., "attributes": {...}}` authenticates, a 401/403 rejects."""

    def __init__(self, config: CustomAuth):
        self.config = config
        self._http: httpx.AsyncClient | None = None

    async def authenticate(self, token: str, request: dict[str, Any]) -> Identity:
        self._http = self._http or httpx.AsyncClient(timeout=self.config.timeout_s)
        try:
            response = await self._http.post(self.config.endpoint, json={"api_key": token, "request": request})
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"authentication endpoint unreachable: {type(exc).__name__}", code="auth_unavailable") from None
        if response.status_code in (401, 403):
            raise AuthenticationError(f"invalid bearer token: {_message(response)}")
        if response.status_code != 200:
            raise ServiceUnavailableError(f"authentication endpoint answered {response.status_code}", code="auth_unavailable")
        try:
            return Identity.model_validate({k: v for k, v in response.json().items() if k in ("principal", "attributes")})
        except ValueError as exc:
            raise ServiceUnavailableError(f"authentication endpoint gave no usable identity: {exc}", code="auth_unavailable") from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.reason_phrase)
    except (json.JSONDecodeError, AttributeError):
        return response.reason_phrase


def build_authenticator(config: AuthConfig | None) -> Authenticator | None:
    if config is None:
        return None
    kind = config.provider_config
    if isinstance(kind, StaticTokensAuth):
        return StaticTokenAuthenticator(kind)
    if isinstance(kind, OAuth2TokenAuth):
        return JWTAuthenticator(kind)
    return CustomEndpointAuthenticator(kind)
