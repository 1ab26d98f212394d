from pydantic import BaseModel, ConfigDict, Field


class MCPToolRuntimeConfig(BaseModel):
    """An MCP client: the server is named per request (`mcp_endpoint`), so only timeouts are configured."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(default=30.0, gt=0, description="whole call: connect, handshake and operation")
    connect_timeout_s: float = Field(default=5.0, gt=0)
