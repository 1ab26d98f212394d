"""Which MCP servers a caller may name: administrators any, others the listed ones and, when the
operator allows it, public addresses only, refused in the same words whatever the reason."""

import pytest

from deployments.services.mcp_servers import MCPServerPolicy
from providers.access import Identity
from providers.api.errors import PermissionDeniedError

ALICE = Identity(principal="alice")
ADMIN = Identity(principal="root", attributes={"roles": ["admin"]})
INTERNAL = ["http://127.0.0.1:8265/mcp", "http://localhost:9000/mcp", "http://169.254.169.254/latest",
            "http://10.0.0.5/mcp", "http://[::1]:80/mcp", "http://0.0.0.0:8000/mcp", "http://192.168.1.1/mcp",
            "http://no-such-host.invalid/mcp"]


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_addresses_are_refused_even_with_any_server_on(url):
    policy = MCPServerPolicy([], any_server=True)
    with pytest.raises(PermissionDeniedError) as refused:
        await policy.check(ALICE, url, "tools.0.server_url")
    assert refused.value.param == "tools.0.server_url"
    assert "127.0.0.1" not in refused.value.message and "could not" not in refused.value.message


async def test_listed_servers_and_admins_pass_and_public_ones_only_when_allowed():
    listed = MCPServerPolicy(["http://127.0.0.1:9000/mcp"], any_server=False)
    await listed.check(ALICE, "http://127.0.0.1:9000/mcp", "w")
    await listed.check(ALICE, "http://127.0.0.1:9000/mcp/tools", "w")
    for outside in ("http://127.0.0.1:9000/mcpx", "http://127.0.0.1:9000/mcp/../admin",
                    "http://127.0.0.1:9000/mcp/%2E%2E/admin", "http://127.0.0.1:9000/mcp@127.0.0.1:8265/"):
        with pytest.raises(PermissionDeniedError):
            await listed.check(ALICE, outside, "w")
    with pytest.raises(PermissionDeniedError):
        await listed.check(ALICE, "http://8.8.8.8/mcp", "w")
    await MCPServerPolicy([], any_server=True).check(ALICE, "http://8.8.8.8/mcp", "w")
    for user in (ADMIN, None):
        await listed.check(user, "http://127.0.0.1:8265/mcp", "w")
