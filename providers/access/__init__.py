"""Who a request comes from and who owns what: identities, access rules and their SQL form."""

from providers.access.identity import Identity
from providers.access.policy import AccessPolicy, AccessRule

__all__ = ["AccessPolicy", "AccessRule", "Identity"]
