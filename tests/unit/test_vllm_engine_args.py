"""The engine arguments a vLLM provider config gives: no media URL is fetched unless its host is listed."""

import pytest
from pydantic import ValidationError

from providers.inline.vllm.config import VLLMProviderConfig
from providers.inline.vllm.engine import NO_MEDIA_HOST, engine_arguments


def test_media_urls_are_fetched_only_from_the_listed_hosts():
    assert engine_arguments(VLLMProviderConfig())["allowed_media_domains"] == [NO_MEDIA_HOST]
    listed = VLLMProviderConfig(allowed_media_domains=["images.example.com"])
    assert engine_arguments(listed)["allowed_media_domains"] == ["images.example.com"]
    with pytest.raises(ValidationError, match="allowed_media_domains"):
        VLLMProviderConfig(engine_args={"allowed_media_domains": []})
