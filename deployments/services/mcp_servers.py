"""Which MCP servers a caller may name in a response's `mcp` tool. Administrators may name any
(authentication off: the one local user). Others may name the tool groups' endpoints and the
operator's `responses.mcp_servers`, and, when `responses.any_mcp_server` is on, other servers whose
every address is public: never a loopback, private, link-local or otherwise reserved one, so a
request cannot reach the cluster's own services or a cloud metadata endpoint."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from providers.access import Identity
from providers.access.policy import AccessPolicy
from providers.api.errors import PermissionDeniedError

RESOLVE_TIMEOUT_S = 5.0


class MCPServerPolicy:
    def __init__(self, allowed: list[str], any_server: bool):
        """`allowed`: server URLs, each allowing itself and the paths below it."""
        self.allowed = [url.rstrip("/") for url in allowed]
        self.any_server = any_server

    def listed(self, url: str) -> bool:
        if "/." in url or "%2e" in url.lower() or "@" in url:  # dot segments or userinfo could step outside
            return False
        return any(url == allowed or url.startswith(allowed + "/") for allowed in self.allowed)

    async def check(self, user: Identity | None, url: str, where: str) -> None:
        """A 403 naming `where` when `user` may not call the server at `url`; the same words whatever
        the reason, so the answer tells nothing of the network behind the server."""
        if AccessPolicy.is_admin(user) or self.listed(url.rstrip("/")):
            return
        if not self.any_server or not await _public(urlsplit(url).hostname or ""):
            raise PermissionDeniedError(f"{where}: this MCP server is not one this server may call for you; the "
                                        "operator allows servers under responses.mcp_servers", param=where)


async def _public(host: str) -> bool:
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM),
                                       RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    return bool(addresses) and all(address.is_global for address in addresses)
