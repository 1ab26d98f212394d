"""Prompts API wire types (Llama Stack's shapes), `{{ variable }}` templates, and the contract of a
prompt registry outside the graph. Without a provider under `providers.prompts`, prompts live in
the `prompts` SQL store (`inline::sql`, deployments/services/prompts.py)."""

from __future__ import annotations

import re
from typing import Any, Protocol

from pydantic import Field

from providers.api.base import WireModel
from providers.api.errors import InvalidRequestError

_PLACEHOLDER = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class CreatePromptRequest(WireModel):
    prompt: str = Field(min_length=1)
    variables: list[str] | None = None


class UpdatePromptRequest(WireModel):
    prompt: str = Field(min_length=1)
    version: int = Field(ge=1, description="the latest version, which this one replaces")
    variables: list[str] | None = None
    set_as_default: bool = True


class SetDefaultVersionRequest(WireModel):
    version: int = Field(ge=1)


def placeholders(template: str) -> list[str]:
    """The variables a template uses, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def checked_variables(template: str, declared: list[str] | None) -> list[str]:
    """The template's variables; declared ones must be exactly those it uses."""
    used = placeholders(template)
    if declared is None:
        return used
    bad = [name for name in declared if not re.match(VARIABLE_NAME, name)]
    if bad:
        raise InvalidRequestError(f"'{bad[0]}' is not a variable name (letters, digits, _)", param="variables")
    undeclared = [name for name in used if name not in declared]
    unused = [name for name in declared if name not in used]
    if undeclared or unused:
        problems = ([f"the template uses {', '.join(undeclared)} but variables does not declare them"] if undeclared else []) + \
                   ([f"variables declares {', '.join(unused)} but the template does not use them"] if unused else [])
        raise InvalidRequestError("; ".join(problems), param="variables")
    return list(dict.fromkeys(declared))


def render(template: str, values: dict[str, str]) -> str:
    """The template with every placeholder filled; a missing value is a 400 naming it."""
    missing = [name for name in placeholders(template) if name not in values]
    if missing:
        raise InvalidRequestError(f"missing prompt variables: {', '.join(missing)}", param="prompt.variables")
    return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


class PromptsProvider(Protocol):
    """A prompt registry (remote::mlflow). Versions are immutable and numbered from 1; a prompt's
    tags carry its raystack owner. Access is checked by the caller, not here."""

    async def create(self, prompt_id: str, template: str, tags: dict[str, str]) -> None:
        """The prompt at version 1, its default."""
        ...

    async def head(self, prompt_id: str) -> dict[str, Any] | None:
        """{prompt_id, tags, latest_version, default_version}, or None when there is no such prompt."""
        ...

    async def version(self, prompt_id: str, version: int) -> str | None:
        """The template of one version, or None."""
        ...

    async def versions(self, prompt_id: str) -> list[dict[str, Any]]:
        """[{version, prompt}], oldest first."""
        ...

    async def heads(self) -> list[dict[str, Any]]: ...

    async def add_version(self, prompt_id: str, template: str, latest: int) -> int:
        """A new version after `latest` (a 409 when another was added since); its number."""
        ...

    async def set_default(self, prompt_id: str, version: int) -> None: ...

    async def delete(self, prompt_id: str) -> None: ...

    async def health(self) -> dict[str, Any]: ...

    async def shutdown(self) -> None: ...
