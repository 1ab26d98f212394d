"""Who can reach the server: the address it listens on, authentication, the Host names it answers
and how large a request may be (the `server` keys of the run config that guard the door).

Authentication off means one user on loopback: a config that listens on another address without
`server.auth` is refused at startup unless it says `allow_unauthenticated: true`.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.access.auth_config import AuthConfig

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024**2
DEFAULT_MAX_UPLOAD_BYTES = 128 * 1024**2


def is_loopback(host: str) -> bool:
    """A loopback name or address (`localhost`, 127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name of a Host header without its port: `example.com:8000` -> `example.com`, `[::1]:80` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Exposure(BaseModel):
    """The door of the server. `allowed_hosts` are the names (Host header, without port) clients may
    use besides loopback ones; `["*"]` answers any. A server on loopback answers only loopback names
    and `allowed_hosts`, so a web page cannot reach it through DNS rebinding; one on another address
    answers any name unless `allowed_hosts` is set."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    auth: AuthConfig | None = None
    allow_unauthenticated: bool = Field(default=False, description="listen beyond loopback with authentication off")
    allowed_hosts: list[str] = []
    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=1024,
                                   description="the largest request body; a larger one is a 413")
    max_upload_bytes: int = Field(default=DEFAULT_MAX_UPLOAD_BYTES, ge=1024,
                                  description="the largest multipart body (file uploads); a larger one is a 413")
    public_docs: bool = Field(default=False, description="/docs and /openapi.json without a token when auth is on")

    @model_validator(mode="after")
    def _no_open_door(self) -> "Exposure":
        if self.auth is None and not is_loopback(self.host) and not self.allow_unauthenticated:
            raise ValueError(
                f"server.auth: the server would listen on {self.host} with authentication off, so anyone who "
                "reaches the port would act as its administrator; set server.auth, or server.allow_unauthenticated: "
                "true to open it in so many words")
        return self

    def body_limit(self, content_type: str | None) -> int:
        """The most bytes a body of this content type may have."""
        multipart = (content_type or "").lower().startswith("multipart/form-data")
        return self.max_upload_bytes if multipart else self.max_request_bytes

    def answers(self, host_header: str | None) -> bool:
        """Whether a request that names this Host is for us."""
        if "*" in self.allowed_hosts:
            return True
        if not host_header:
            return False
        name = host_name(host_header)
        if name in self.allowed_hosts:
            return True
        return is_loopback(name) if is_loopback(self.host) or self.allowed_hosts else True
