"""inline::sentence-transformers: embeddings in the replica."""

from providers.inline.sentence_transformers.config import SentenceTransformersConfig


def create_provider(config: SentenceTransformersConfig):
    from providers.inline.sentence_transformers.embedder import SentenceTransformersProvider

    return SentenceTransformersProvider(config)
