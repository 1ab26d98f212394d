"""Whether a failure means the database or cache could not be reached (down, restarting, a dropped
connection) rather than that what was sent was wrong: the same request may succeed once it is back."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

_UNREACHABLE = (OperationalError, InterfaceError, DisconnectionError, ConnectionError,
                RedisConnectionError, RedisTimeoutError)
# SQLSTATE classes of a server that is not taking connections: 08 connection exception, 57 operator
# intervention (shutting down, starting up).
_UNREACHABLE_SQLSTATE_CLASSES = ("08", "57")


def unreachable(exc: BaseException) -> bool:
    """Also when the driver's error is wrapped: asyncpg's refused or reset connection is an OSError,
    a server shutting down or starting up a DBAPIError."""
    for error in (exc, exc.__cause__):
        if isinstance(error, DBAPIError) and (
                error.connection_invalidated
                or str(getattr(error.orig, "sqlstate", None) or "")[:2] in _UNREACHABLE_SQLSTATE_CLASSES):
            return True
        if isinstance(error, _UNREACHABLE):
            return True
    return False
