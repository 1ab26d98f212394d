"""The model routing table: registered models, who may see them, and the inference client of each."""

from deployments.clients import InferenceClient, ProviderDirectory
from providers.access import AccessPolicy, Identity
from providers.api.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from providers.api.inference import ProviderModel
from providers.api.models import Model, RegisterModelRequest
from providers.run_config import ModelEntry
from providers.storage.model_registry import ModelRegistry


class ModelService:
    def __init__(self, registry: ModelRegistry, policy: AccessPolicy, providers: ProviderDirectory):
        self.registry = registry
        self.policy = policy
        self.providers = providers

    def client(self, model: Model) -> InferenceClient:
        """The inference deployment that serves `model`."""
        return self.providers.inference(model.provider_id)

    async def seed(self, entries: list[ModelEntry]) -> None:
        """Register the run config's models, keeping ones already stored under the same id."""
        stored = {m.identifier: m for m in await self.registry.list()}
        for entry in entries:
            model = Model(
                identifier=entry.model_id,
                provider_id=entry.provider_id,
                provider_resource_id=entry.provider_model_id or entry.model_id,
                model_type=entry.model_type,
                metadata=entry.metadata,
            )
            existing = stored.get(model.identifier)
            if existing is None or existing.model_copy(update={"created": 0}) != model:
                await self.registry.register(model, replace=True)

    def may(self, user: Identity | None, action: str, model: Model) -> bool:
        return self.policy.allows(user, action, "model", model.identifier, model.owner)

    async def get(self, model_id: str) -> Model:
        """Any registered model, whoever owns it: for records that name one."""
        return await self.registry.get(model_id)

    async def model_for(self, user: Identity | None, model_id: str, *, fresh: bool = False) -> Model:
        """The model `model_id` if `user` may read it; one they may not read is not found."""
        model = await self.registry.get(model_id, fresh=fresh)
        if not self.may(user, "read", model):
            raise NotFoundError(f"Model '{model_id}' not found", param="model", code="model_not_found")
        return model

    async def model_of_type(self, user: Identity | None, model_id: str, model_type: str, use: str,
                            param: str = "model") -> Model:
        """`model_for`, and a 400 naming `use` when the model is not a `model_type` model; both
        errors name `param`."""
        try:
            model = await self.model_for(user, model_id)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, param=param, code=exc.code) from None
        if model.model_type != model_type:
            raise InvalidRequestError(f"model '{model_id}' is an {model.model_type} model; {use} needs an {model_type} "
                                      "model", param=param)
        return model

    async def visible(self, user: Identity | None) -> list[Model]:
        return [m for m in await self.registry.list() if self.may(user, "read", m)]

    async def register_as(self, model: Model) -> Model:
        """Register `model` as the graph made it (a fine-tuned model), replacing one of its id."""
        return await self.registry.register(model, replace=True)

    async def unregister(self, user: Identity | None, model_id: str) -> None:
        model = await self.model_for(user, model_id, fresh=True)
        if not self.may(user, "delete", model):
            raise PermissionDeniedError(f"not allowed to delete model '{model_id}'", param="model_id")
        await self.registry.unregister(model_id)

    async def register(self, user: Identity | None, request: RegisterModelRequest) -> Model:
        if not self.policy.allows(user, "create", "model", request.model_id, user):
            raise PermissionDeniedError(f"not allowed to register model '{request.model_id}'", param="model_id")
        provider_id = request.provider_id or self._only_inference_provider()
        route = self.providers.route(provider_id)
        if route.api != "inference":
            raise InvalidRequestError(f"provider '{provider_id}' does not serve models", param="provider_id")
        admin = self.policy.is_admin(user)
        if not admin and not route.entry.registered_by_users():
            raise PermissionDeniedError(f"registering models on provider '{provider_id}' needs the admin role (the "
                                        "run config's model_registration)", param="provider_id")
        provider_model_id = request.provider_model_id or request.model_id
        served = await self.providers.inference(provider_id).list_models()
        model_type = request.model_type
        metadata = dict(request.metadata or {})
        if served:
            match = next((m for m in served if m.provider_model_id == provider_model_id), None)
            if match is not None and _is_adapter(match) and not admin:
                raise PermissionDeniedError("a fine-tuned adapter is registered for its job's owner, as the job's "
                                            "fine_tuned_model", param="provider_model_id")
            if match is None:
                names = ", ".join(m.provider_model_id for m in served if not _is_adapter(m))
                raise InvalidRequestError(
                    f"provider '{provider_id}' does not serve '{provider_model_id}' (it serves: {names})",
                    param="provider_model_id",
                )
            model_type = model_type or match.model_type
            metadata = {**match.metadata, **metadata}
        model = Model(
            identifier=request.model_id,
            provider_id=provider_id,
            provider_resource_id=provider_model_id,
            model_type=model_type or "llm",
            metadata=metadata,
            owner=user,
        )
        return await self.registry.register(model)

    def _only_inference_provider(self) -> str:
        ids = [route.entry.provider_id for route in self.providers.of_api("inference")]
        if len(ids) != 1:
            raise InvalidRequestError("provider_id is required when several inference providers exist", param="provider_id")
        return ids[0]

    async def check(self) -> None:
        """Raise unless the metadata store answers."""
        await self.registry.check()


def _is_adapter(model: ProviderModel) -> bool:
    """A fine-tuning job's LoRA adapter, which belongs to the job's owner."""
    return "adapter_path" in model.metadata
