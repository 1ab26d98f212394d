"""This Serve replica as the services see it (deployments/services/replica.py)."""

import ray
from ray import serve

from deployments.services.replica import Replica

SERVE_NAMESPACE = "serve"  # the Ray namespace of Serve's replica actors


def replica_alive(actor_name: str) -> bool:
    try:
        ray.get_actor(actor_name, namespace=SERVE_NAMESPACE)
    except ValueError:
        return False
    return True


def this_replica() -> Replica:
    """Only inside a Serve replica."""
    return Replica(serve.get_replica_context().replica_id.to_full_id_str(), replica_alive)
