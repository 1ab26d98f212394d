"""Read what Ray's metrics agents export (Prometheus text) on every node of the test cluster."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def samples(cluster, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` whose labels include `labels`, across the cluster's nodes."""
    found = []
    for node in [cluster.head_node, *cluster.worker_nodes]:
        url = f"http://127.0.0.1:{node.metrics_export_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    found.append((sample.labels, sample.value))
    return found


def total(cluster, name: str, **labels: str) -> float:
    return sum(value for _, value in samples(cluster, name, **labels))
