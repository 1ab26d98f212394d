"""The offline shield: the packaged classifier, scored into OpenAI's moderation categories."""

import pytest

from providers.api.errors import InvalidRequestError
from providers.api.safety import CATEGORIES
from providers.inline.profanity_check import ProfanityCheckConfig, create_provider


async def test_a_threat_is_flagged_as_harassment_and_a_friendly_text_passes():
    shield = create_provider(ProfanityCheckConfig())
    threat, friendly = await shield.moderate(["I will kill you", "Thanks, have a lovely day at the beach!"], {})
    assert threat["flagged"] and threat["categories"]["harassment"] and threat["category_scores"]["harassment"] > 0.9
    assert not friendly["flagged"] and friendly["category_scores"]["harassment"] < 0.5
    assert set(threat["categories"]) == set(CATEGORIES) and not threat["categories"]["sexual"]


async def test_the_threshold_param_decides_what_is_flagged():
    shield = create_provider(ProfanityCheckConfig())
    [strict] = await shield.moderate(["this movie was damn boring"], {"threshold": 0.01})
    [lenient] = await shield.moderate(["this movie was damn boring"], {"threshold": 1.0})
    assert strict["flagged"] and not lenient["flagged"]
    with pytest.raises(InvalidRequestError):
        await shield.moderate(["x"], {"threshold": 2})
