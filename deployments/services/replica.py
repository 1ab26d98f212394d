"""The replica a service runs in, passed in so that services run without Serve (in unit tests)."""

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Replica:
    """`id` names this replica's actor in records it takes on (ingestions, eval jobs); `alive` tells
    whether the replica a record names still runs, so that its work can be taken over."""

    id: str
    alive: Callable[[str], bool]
