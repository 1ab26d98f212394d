"""Request bodies refuse at the door what would cost or break later: job ids that could name a path,
more tools than a model takes, file_search filters a search would refuse, negative token ids."""

import pytest
from pydantic import ValidationError

from providers.api.inference import CompletionRequest
from providers.api.post_training import SupervisedFineTuneRequest
from providers.api.responses import CreateResponseRequest
from providers.run_config import ProviderEntry

TRAINING = {"model": "m", "training_config": {"n_epochs": 1, "data_config": {"dataset_id": "d", "batch_size": 1}}}


@pytest.mark.parametrize("job_uuid", ["..", ".hidden", "-x", "a/b", "x" * 129])
def test_job_ids_start_with_a_letter_or_digit_and_name_no_path(job_uuid):
    with pytest.raises(ValidationError, match="job_uuid"):
        SupervisedFineTuneRequest.model_validate({**TRAINING, "job_uuid": job_uuid})
    assert SupervisedFineTuneRequest.model_validate({**TRAINING, "job_uuid": "ft-1.a_b"}).job_uuid == "ft-1.a_b"


def test_at_most_128_tools_and_filters_checked_when_the_response_is_created():
    tools = [{"type": "function", "name": f"f{i}", "parameters": {"type": "object"}} for i in range(129)]
    with pytest.raises(ValidationError, match="at most 128"):
        CreateResponseRequest.model_validate({"model": "m", "input": "x", "tools": tools})
    search = {"type": "file_search", "vector_store_ids": ["vs_1"], "filters": {"type": "eq", "key": "year", "value": 2024}}
    CreateResponseRequest.model_validate({"model": "m", "input": "x", "tools": [search]})
    with pytest.raises(ValidationError, match="filters"):
        CreateResponseRequest.model_validate({"model": "m", "input": "x", "tools": [{**search, "filters": {"type": "near"}}]})


def test_token_ids_are_not_negative():
    with pytest.raises(ValidationError):
        CompletionRequest.model_validate({"model": "m", "prompt": [1, -5]})


def test_models_of_a_remote_are_registered_by_admins_unless_the_entry_opens_it():
    assert not ProviderEntry(provider_id="r", provider_type="remote::openai").registered_by_users()
    assert ProviderEntry(provider_id="r", provider_type="remote::openai", model_registration="users").registered_by_users()
    assert ProviderEntry(provider_id="v", provider_type="inline::vllm").registered_by_users()
    assert not ProviderEntry(provider_id="v", provider_type="inline::vllm", model_registration="admins").registered_by_users()
