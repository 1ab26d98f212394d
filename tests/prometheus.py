"""Read what Ray's metrics agents export (Prometheus text) on every node of the test cluster."""

import json
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


def session_endpoints(temp_dir: str = "/tmp/ray") -> tuple[str, ...]:
    """The metrics endpoints of the Ray last started on this machine (what `ray metrics
    launch-prometheus` reads: the session's service discovery file), on loopback."""
    groups = json.loads((Path(temp_dir) / "prom_metrics_service_discovery.json").read_text())
    return tuple(f"http://127.0.0.1:{target.rsplit(':', 1)[1]}/metrics" for group in groups for target in group["targets"])


def scrape(source) -> list[tuple[str, dict[str, str], float]]:
    """The graph's samples (names with `raystack_`), as (name, labels, value), on every node of a
    test cluster, or at each of a tuple of endpoints."""
    urls = source if isinstance(source, tuple) else [
        f"http://127.0.0.1:{node.metrics_export_port}/metrics" for node in [source.head_node, *source.worker_nodes]]
    found = []
    for url in urls:
        text = urllib.request.urlopen(url, timeout=30).read().decode()  # a metrics agent on a loaded box can take 10 s
        ours = "\n".join(line for line in text.splitlines() if "raystack_" in line)
        for family in text_string_to_metric_families(ours):
            found.extend((s.name, s.labels, s.value) for s in family.samples)
    return found


def samples(source, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` whose labels include `labels`; `source` is what `scrape` takes,
    or what it returned."""
    scraped = source if isinstance(source, list) else scrape(source)
    return [(found, value) for sample_name, found, value in scraped
            if sample_name == name and labels.items() <= found.items()]


def total(source, name: str, **labels: str) -> float:
    return sum(value for _, value in samples(source, name, **labels))
