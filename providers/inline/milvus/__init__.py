"""inline::milvus (a milvus-lite directory in the replica) and remote::milvus (a Milvus server):
one collection per vector store."""

from providers.inline.milvus.config import InlineMilvusConfig, RemoteMilvusConfig


def create_provider(config: InlineMilvusConfig | RemoteMilvusConfig):
    from providers.remote.milvus.vector_io import MilvusVectorIO

    return MilvusVectorIO(config)
