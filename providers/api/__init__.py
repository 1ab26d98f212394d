"""Per API: pydantic wire types (OpenAI format) and the Protocol a provider implements."""
