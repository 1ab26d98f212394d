"""/v1/tools and /v1/toolgroups: the tool groups of the run config and the tools they serve."""

from typing import Annotated

from fastapi import APIRouter, Depends

from deployments.routes import GatewayDep, UserDep
from deployments.services.tools import ToolService
from providers.api.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["Tools"])


async def tools_of(gateway: GatewayDep, user: UserDep) -> ToolService:
    """Tool groups come from the run config and are open to every authenticated caller."""
    if gateway.tools is None:
        raise NotFoundError("no tools: the run config needs 'tool_runtime' under apis and a provider under "
                            "providers.tool_runtime")
    return gateway.tools


ToolsDep = Annotated[ToolService, Depends(tools_of)]


@router.get("/tools")
async def list_tools(tools: ToolsDep, toolgroup_id: str | None = None):
    return {"data": await tools.list_tools(toolgroup_id)}


@router.get("/tools/{tool_name}")
async def get_tool(tool_name: str, tools: ToolsDep):
    found = next((tool for tool in await tools.list_tools() if tool.name == tool_name), None)
    if found is None:
        raise NotFoundError(f"Tool '{tool_name}' not found", param="tool_name")
    return found


@router.get("/toolgroups")
async def list_tool_groups(tools: ToolsDep):
    return {"data": list(tools.groups.values())}


@router.get("/toolgroups/{toolgroup_id}")
async def get_tool_group(toolgroup_id: str, tools: ToolsDep):
    return tools.group(toolgroup_id)
