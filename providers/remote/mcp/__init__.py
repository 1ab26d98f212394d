"""remote::model-context-protocol: lists and calls the tools of an MCP server over streamable HTTP."""

from providers.remote.mcp.config import MCPToolRuntimeConfig


def create_provider(config: MCPToolRuntimeConfig):
    from providers.remote.mcp.runtime import MCPToolRuntime

    return MCPToolRuntime(config)
