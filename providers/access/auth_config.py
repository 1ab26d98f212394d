"""`server.auth` in the run config: which authenticator checks bearer tokens."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from providers.access.identity import Identity


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaticTokensAuth(StrictModel):
    """Fixed tokens, each mapped to an identity: for small teams and tests."""

    type: Literal["static_tokens"]
    tokens: dict[str, Identity] = Field(min_length=1)


class JWKSConfig(StrictModel):
    uri: str
    key_recheck_period: float = Field(default=3600.0, gt=0, description="seconds between JWKS refreshes")


# Which token claim fills which attribute. Unlike Llama Stack's default, `sub` and `username` do not
# fill `roles`: a user an identity provider let name themselves `admin` would hold the admin role.
DEFAULT_CLAIMS_MAPPING = {
    "roles": "roles", "groups": "teams", "team": "teams",
    "project": "projects", "tenant": "namespaces", "namespace": "namespaces",
}


class OAuth2TokenAuth(StrictModel):
    """OAuth2/OIDC access tokens (JWTs) verified against the identity provider's JWKS."""

    type: Literal["oauth2_token"]
    jwks: JWKSConfig
    issuer: str | None = None
    audience: str
    principal_claim: str = "sub"
    claims_mapping: dict[str, str] = DEFAULT_CLAIMS_MAPPING
    algorithms: list[str] = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
    leeway_s: float = Field(default=30.0, ge=0, description="clock skew allowed on exp/nbf/iat")


class CustomAuth(StrictModel):
    """An endpoint of the user's that receives the token and answers with principal + attributes."""

    type: Literal["custom"]
    endpoint: str
    timeout_s: float = Field(default=5.0, gt=0)


AuthProvider = Annotated[Union[StaticTokensAuth, OAuth2TokenAuth, CustomAuth], Field(discriminator="type")]


class AuthConfig(StrictModel):
    provider_config: AuthProvider
