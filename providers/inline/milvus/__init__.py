"""inline::milvus: a milvus-lite directory in the replica, one collection per vector store, with
remote::milvus's implementation."""

from providers.inline.milvus.config import InlineMilvusConfig


def create_provider(config: InlineMilvusConfig):
    from providers.inline.milvus.vector_io import MilvusLiteVectorIO

    return MilvusLiteVectorIO(config)
