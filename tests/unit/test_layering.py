"""The code's shape: no import cycle (type-only imports count), imports go one way between the
layers, no module over 500 lines, and each typed client and provider matches its API's Protocol."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from deployments.clients.directory import CLIENT_BY_API
from providers.registry import PROVIDER_SPECS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("deployments", "providers", "graphs", "cluster")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """First-party modules `name` imports anywhere in its file: at the top, in functions, under TYPE_CHECKING."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    assert _cycles(GRAPH) == []


# What each layer must not import: deployment classes -> routes -> services -> clients ->
# providers/api, storage and access; provider implementations -> providers/api.
DEPLOYMENT_CLASSES = ("deployments.ingress", "deployments.agents", "deployments.provider_host", "deployments.replicas")
FORBIDDEN = {
    "deployments.routes": DEPLOYMENT_CLASSES,
    "deployments.services": DEPLOYMENT_CLASSES + ("deployments.routes",),
    "deployments.clients": DEPLOYMENT_CLASSES + ("deployments.routes", "deployments.services"),
    "providers.api": ("deployments", "providers.inline", "providers.remote", "providers.storage", "providers.registry",
                      "providers.run_config"),
    "providers.inline": ("deployments",),
    "providers.remote": ("deployments", "providers.inline"),
    "providers.storage": ("deployments", "providers.inline", "providers.remote"),
    "providers.access": ("deployments", "providers.inline", "providers.remote"),
    "deployments.services.": ("providers.inline", "providers.remote"),
}


def _within(module: str, prefix: str) -> bool:
    return module == prefix.rstrip(".") or module.startswith(prefix.rstrip(".") + ".")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_go_one_way(layer):
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items() if _within(module, layer)
                   for target in targets for forbidden in FORBIDDEN[layer] if _within(target, forbidden))
    assert wrong == []


def test_no_module_over_500_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _methods(cls) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_") and name != "shutdown"}


def _parameters(signature: inspect.Signature) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in signature.parameters.values()]


@pytest.mark.parametrize("api", sorted(api for api in CLIENT_BY_API if api != "agents"))
def test_each_client_has_its_protocols_methods_with_the_same_parameters(api):
    client = CLIENT_BY_API[api]
    protocol = _methods(client.protocol)
    mine = _methods_with_bases(client)
    assert {name: _parameters(sig) for name, sig in protocol.items()} == \
        {name: _parameters(sig) for name, sig in mine.items() if name in protocol}


IMPLEMENTATIONS = {
    "inline::vllm": "providers.inline.vllm.engine:VLLMProvider",
    "inline::sentence-transformers": "providers.inline.sentence_transformers.embedder:SentenceTransformersProvider",
    "remote::openai": "providers.remote.openai.adapter:OpenAICompatProvider",
    "inline::localfs": "providers.inline.localfs.files:LocalFSFiles",
    "inline::milvus": "providers.inline.milvus.vector_io:MilvusLiteVectorIO",
    "remote::milvus": "providers.remote.milvus.vector_io:MilvusVectorIO",
    "inline::profanity-check": "providers.inline.profanity_check.shield:ProfanityShield",
    "inline::llama-guard": "providers.inline.llama_guard.shield:LlamaGuardShield",
    "remote::model-context-protocol": "providers.remote.mcp.runtime:MCPToolRuntime",
    "remote::tavily-search": "providers.remote.tavily_search.search:TavilySearch",
    "inline::parquet": "providers.inline.parquet.datasets:ParquetDatasets",
    "remote::mlflow": "providers.remote.mlflow.prompts:MLflowPrompts",
    "inline::torchtune": "providers.inline.torchtune.provider:TorchtunePostTraining",
}


def test_every_provider_type_is_checked_against_its_protocol():
    assert set(IMPLEMENTATIONS) == {spec.provider_type for spec in PROVIDER_SPECS if spec.module}


@pytest.mark.parametrize("spec", [s for s in PROVIDER_SPECS if s.module], ids=lambda s: s.provider_type)
def test_each_provider_implements_its_protocol(spec):
    """Each method a provider has takes its Protocol's parameters. An inference provider has the
    methods its models need (an embedder has no chat_completion); the others have every method."""
    module_name, _, class_name = IMPLEMENTATIONS[spec.provider_type].partition(":")
    implementation = getattr(importlib.import_module(module_name), class_name)
    wanted = _methods(CLIENT_BY_API[spec.api].protocol)
    has = {name: sig for name, sig in _methods_with_bases(implementation).items() if name in wanted}
    if spec.api != "inference":
        assert set(has) == set(wanted)
    assert {n: _parameters(s) for n, s in has.items()} == {n: _parameters(wanted[n]) for n in has}


def _methods_with_bases(cls) -> dict[str, inspect.Signature]:
    methods: dict[str, inspect.Signature] = {}
    for base in reversed(cls.__mro__[:-1]):
        methods.update(_methods(base))
    return methods
