"""/v1/tools and /v1/toolgroups: the tool groups of the run config and the tools they serve."""


from fastapi import APIRouter

from deployments.routes.dependencies import ToolsDep
from deployments.routes.replies import Data, ToolGroupObject, ToolObject, replies
from providers.api.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["Tools"])




@router.get("/tools", **replies(Data[ToolObject]))
async def list_tools(tools: ToolsDep, toolgroup_id: str | None = None):
    return {"data": await tools.list_tools(toolgroup_id)}


@router.get("/tools/{tool_name}", **replies(ToolObject))
async def get_tool(tool_name: str, tools: ToolsDep):
    found = next((tool for tool in await tools.list_tools() if tool.name == tool_name), None)
    if found is None:
        raise NotFoundError(f"Tool '{tool_name}' not found", param="tool_name")
    return found


@router.get("/toolgroups", **replies(Data[ToolGroupObject]))
async def list_tool_groups(tools: ToolsDep):
    return {"data": list(tools.groups.values())}


@router.get("/toolgroups/{toolgroup_id}", **replies(ToolGroupObject))
async def get_tool_group(toolgroup_id: str, tools: ToolsDep):
    return tools.group(toolgroup_id)
