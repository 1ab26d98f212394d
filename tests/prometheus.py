"""Read what Ray's metrics agents export (Prometheus text) on every node of the test cluster."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(cluster) -> list[tuple[str, dict[str, str], float]]:
    """The graph's samples (names with `raystack_`) on every node of the cluster, as (name, labels, value)."""
    found = []
    for node in [cluster.head_node, *cluster.worker_nodes]:
        url = f"http://127.0.0.1:{node.metrics_export_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        ours = "\n".join(line for line in text.splitlines() if "raystack_" in line)
        for family in text_string_to_metric_families(ours):
            found.extend((s.name, s.labels, s.value) for s in family.samples)
    return found


def samples(source, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` whose labels include `labels`; `source` is a cluster, or what
    `scrape` returned."""
    scraped = source if isinstance(source, list) else scrape(source)
    return [(found, value) for sample_name, found, value in scraped
            if sample_name == name and labels.items() <= found.items()]


def total(source, name: str, **labels: str) -> float:
    return sum(value for _, value in samples(source, name, **labels))
