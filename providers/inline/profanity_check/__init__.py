"""inline::profanity-check: an offline CPU shield, the small abusive-language classifier that
ships inside the `alt-profanity-check` package."""

from providers.inline.profanity_check.config import ProfanityCheckConfig


def create_provider(config: ProfanityCheckConfig):
    from providers.inline.profanity_check.shield import ProfanityShield

    return ProfanityShield(config)
