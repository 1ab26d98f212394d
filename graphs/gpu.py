"""The GPU cluster graph (graphs/configs/gpu.yaml): vLLM on GPUs, state in PostgreSQL and Redis,
vectors in a Milvus server; site settings from the environment of the node that builds it.

    serve run graphs.gpu:app          (or: serve deploy cluster/serve-gpu.yaml)
"""

from graphs.builder import SHIPPED_CONFIGS, build_app
from graphs.serve_env import apply_fast_serve_defaults
from providers.run_config import load_run_config

apply_fast_serve_defaults()
app = build_app(load_run_config(SHIPPED_CONFIGS / "gpu.yaml"))
