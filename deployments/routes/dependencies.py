"""The routes' named dependencies: the caller, page parameters, and each service of the replica
(`app.state.services`), a 404 naming what the run config lacks when the graph does not serve it.
Tests can swap any of them through `app.dependency_overrides`."""

from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from pydantic import AfterValidator

from deployments.clients import AgentsClient, ProviderDirectory
from deployments.guard import MISSING_TOKEN
from deployments.services.batches import BatchService
from deployments.services.conversations import ConversationService
from deployments.services.datasets import DatasetService
from deployments.services.eval import EvalService
from deployments.services.files import FileService
from deployments.services.fine_tuning import FineTuningService
from deployments.services.models import ModelService
from deployments.services.post_training import PostTrainingService
from deployments.services.prompts import Prompts
from deployments.services.responses import ResponseService
from deployments.services.safety import SafetyService
from deployments.services.scoring import ScoringService
from deployments.services.tools import ToolService
from deployments.services.vector_stores import VectorStoreService
from deployments.services.wiring import Services
from providers.access import Identity
from providers.api.errors import AuthenticationError, NotFoundError
from providers.storage.inference_store import InferenceStore


async def services_of(request: Request) -> Services:
    """Async on purpose: FastAPI would run a plain function in a worker thread on every request."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services_of)]


async def user_of(request: Request) -> Identity | None:
    """The caller, as the request guard (deployments/guard.py) authenticated them before the body was
    read; None when authentication is off. Fails closed: a route the guard left open has no caller."""
    state = request.scope.get("state", {})
    if "user" not in state and request.app.state.services.authenticator is not None:
        raise AuthenticationError(MISSING_TOKEN)
    return state.get("user")


UserDep = Annotated[Identity | None, Depends(user_of)]

MAX_PAGE = 100
# A page size: above the most a page holds it is capped, as on OpenAI's list endpoints.
Limit = Annotated[int, Query(ge=1), AfterValidator(lambda limit: min(limit, MAX_PAGE))]
Order = Literal["asc", "desc"]


def _served(service: Any, missing: str) -> Any:
    if service is None:
        raise NotFoundError(missing)
    return service


async def models_of(services: ServicesDep) -> ModelService:
    return services.models


async def providers_of(services: ServicesDep) -> ProviderDirectory:
    return services.providers


async def files_of(services: ServicesDep) -> FileService:
    return _served(services.files, "no files provider: the run config has no provider under providers.files")


async def vector_stores_of(services: ServicesDep) -> VectorStoreService:
    return _served(services.vector_stores, "no vector stores: the run config needs a vector_io provider, a files "
                                           "provider and the vector_stores store")


async def prompts_of(services: ServicesDep) -> Prompts:
    return _served(services.prompts, "no prompts: the run config needs 'prompts' under apis and a 'prompts' store")


async def safety_of(services: ServicesDep, user: UserDep) -> SafetyService:
    """Shields are open to every authenticated caller."""
    return _served(services.safety, "no safety: the run config needs 'safety' under apis and a provider under "
                                    "providers.safety")


async def tools_of(services: ServicesDep, user: UserDep) -> ToolService:
    """Tool groups come from the run config and are open to every authenticated caller."""
    return _served(services.tools, "no tools: the run config needs 'tool_runtime' under apis and a provider under "
                                   "providers.tool_runtime")


async def conversations_of(services: ServicesDep) -> ConversationService:
    return _served(services.conversations, "no conversations: the run config needs 'conversations' under apis and a "
                                           "'conversations' store")


async def responses_of(services: ServicesDep) -> ResponseService:
    return _served(services.responses, "no responses: the run config needs 'responses' under apis and a "
                                       "'responses' store")


async def agents_of(services: ServicesDep, responses: Annotated[ResponseService, Depends(responses_of)]) -> AgentsClient:
    """Where responses are served, the run config has an agents deployment to make them."""
    return services.agents


async def datasets_of(services: ServicesDep) -> DatasetService:
    return _served(services.datasets, "no datasets: the run config needs a provider under providers.datasetio")


async def post_training_of(services: ServicesDep) -> PostTrainingService:
    return _served(services.post_training, "no post-training: the run config needs a provider under "
                                           "providers.post_training")


async def fine_tuning_of(services: ServicesDep) -> FineTuningService:
    return _served(services.fine_tuning, "no fine-tuning jobs: the run config needs a provider under "
                                         "providers.post_training and one under providers.files")


async def scoring_of(services: ServicesDep) -> ScoringService:
    return _served(services.scoring, "no scoring: the run config needs 'scoring' under apis")


async def eval_of(services: ServicesDep) -> EvalService:
    return _served(services.eval, "no eval: the run config needs 'eval' under apis, a datasetio provider and a "
                                  "'jobs' store")


async def batches_of(services: ServicesDep) -> BatchService:
    return _served(services.batches, "no batches: the run config needs 'batches' under apis, a files provider and a "
                                     "'jobs' store")


async def inference_store_of(services: ServicesDep) -> InferenceStore:
    return _served(services.inference_store, "chat completions are not stored: the run config declares no "
                                             "'inference' store")


ModelsDep = Annotated[ModelService, Depends(models_of)]
ProvidersDep = Annotated[ProviderDirectory, Depends(providers_of)]
FilesDep = Annotated[FileService, Depends(files_of)]
StoresDep = Annotated[VectorStoreService, Depends(vector_stores_of)]
PromptsDep = Annotated[Prompts, Depends(prompts_of)]
SafetyDep = Annotated[SafetyService, Depends(safety_of)]
ToolsDep = Annotated[ToolService, Depends(tools_of)]
ConversationsDep = Annotated[ConversationService, Depends(conversations_of)]
ResponsesDep = Annotated[ResponseService, Depends(responses_of)]
BatchesDep = Annotated[BatchService, Depends(batches_of)]
AgentsDep = Annotated[AgentsClient, Depends(agents_of)]
DatasetsDep = Annotated[DatasetService, Depends(datasets_of)]
PostTrainingDep = Annotated[PostTrainingService, Depends(post_training_of)]
FineTuningDep = Annotated[FineTuningService, Depends(fine_tuning_of)]
ScoringDep = Annotated[ScoringService, Depends(scoring_of)]
EvalDep = Annotated[EvalService, Depends(eval_of)]
StoreDep = Annotated[InferenceStore, Depends(inference_store_of)]
